"""Extract stage: HTML page -> article text, and the text that versions are compared on.

* ``extract_article`` decodes and parses the page once, takes the headline from the parsed
  tree and the body from one trafilatura pass. Its metadata pass is skipped on purpose: its
  date search alone made the stage ~35% slower than bare ``trafilatura.extract``.
* ``normalise`` irons out typography and whitespace so that only wording differences remain.
* ``comparable_text`` drops page furniture: lines matched by site-independent recognisers
  (``is_generic_furniture``) and lines whose ``mask_line`` key the store has seen recur across
  a site's articles. Versions are hashed and diffed on this text.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

import trafilatura

# lxml ships no type information, and the mypy config only exempts the packages it lists.
from lxml import etree  # type: ignore[import-untyped]
from lxml.html import HtmlElement  # type: ignore[import-untyped]

from watcher.errors import ExtractError

log = logging.getLogger(__name__)

# Below this, what trafilatura found is a stray link or label ("Home"), not a story.
MIN_BODY_CHARS = 20


@dataclass(frozen=True)
class Extracted:
    """Headline ("" if none) and body as extracted, one paragraph per line."""

    title: str
    text: str


def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


# --- decoding ------------------------------------------------------------------------------

# UTF-32 first: the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS = {codecs.BOM_UTF32_LE: "utf-32", codecs.BOM_UTF32_BE: "utf-32", codecs.BOM_UTF8: "utf-8-sig"}
_BOMS |= {codecs.BOM_UTF16_LE: "utf-16", codecs.BOM_UTF16_BE: "utf-16"}
_META_CHARSET = re.compile(rb"""<meta[^>]{0,300}?charset\s*=\s*["']?\s*([\w.:-]{1,40})""", re.I)
_CHARSET_PARAM = re.compile(r"""\bcharset\s*=\s*["']?([^\s;"']+)""", re.I)
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f]")
_PREFORMATTED = re.compile(r"(<(pre|textarea)\b.*?</\2\s*>)", re.I | re.S)


# The encodings of the WHATWG Encoding Standard, by Python codec name. Browsers read any other
# label as windows-1252, and some Python codecs are no text encoding at all: a page declaring
# charset=rot13, base64, zlib or "undefined" made bytes.decode raise instead of decoding.
_WEB_CODECS = frozenset(
    codecs.lookup(name).name
    for name in (
        "utf-8", "utf-16", "utf-16-be", "utf-16-le", "cp866", "koi8-r", "koi8-u", "mac-roman",
        "mac-cyrillic", "cp874", "tis-620", "gbk", "gb2312", "gb18030", "big5", "big5hkscs",
        "euc_jp", "iso2022_jp", "shift_jis", "cp932", "euc_kr", "cp949",
        *(f"iso8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16)),
        *(f"cp125{n}" for n in range(9)),
    )
)  # fmt: skip


def _codec(label: str | None) -> str | None:
    """The codec a browser would use for a charset label; None for a label it ignores."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None
    if name in ("iso8859-1", "ascii"):
        return "cp1252"  # Latin-1 and ASCII labels mean windows-1252
    return name if name in _WEB_CODECS else None


def _http_charset(content_type: str | None) -> str | None:
    match = _CHARSET_PARAM.search(content_type or "")
    return match.group(1) if match else None


def _meta_codec(data: bytes) -> str | None:
    """The <meta> charset, read as browsers do (WHATWG); None when absent or unusable."""
    match = _META_CHARSET.search(data, 0, 4096)
    name = _codec(match.group(1).decode("ascii")) if match else None
    # A <meta> readable as ASCII cannot be UTF-16: the page is in some ASCII-based charset.
    return None if name is None or name.startswith("utf-16") else name


def mostly_utf8(data: bytes) -> bool:
    """Whether bytes read as UTF-8 with at most a few invalid sequences among valid ones.

    A stray byte (a cut-off paste, a broken ad snippet) must not turn a UTF-8 page or feed
    into windows-1252 mojibake: every accented word would read as edited. Text in a legacy
    charset seldom forms valid multi-byte sequences, so four valid non-ASCII characters for
    each invalid sequence is taken for UTF-8.
    """
    text = data.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd")
    valid = len(text) - len(text.encode("ascii", errors="ignore")) - invalid
    return valid >= 4 * invalid


def _decode(data: bytes, charset: str | None = None) -> str:
    """Bytes -> text without ever raising: BOM, else valid UTF-8, else the declared charset
    (the HTTP ``charset``, then the page's <meta>), except that a UTF-8, Latin-1 or missing
    label is checked against the bytes: mostly UTF-8, else windows-1252."""
    for bom, codec in _BOMS.items():
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    try:
        # Valid UTF-8 with non-ASCII bytes is almost never another charset, while pages that
        # mislabel UTF-8 as Latin-1 are common; ASCII decodes the same either way.
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    declared = _codec(charset) or _meta_codec(data)
    if declared in (None, "cp1252", "utf-8"):
        # The usual mix-ups: UTF-8 labelled Latin-1, Latin-1 labelled UTF-8, no label at all.
        # The bytes decide; other declared charsets are taken at their word.
        declared = "utf-8" if mostly_utf8(data) else "cp1252"
    return data.decode(declared, errors="replace")


def _fold_source_newlines(page: str) -> str:
    """Source line breaks -> spaces outside <pre>/<textarea>, as browsers render them.

    trafilatura copies them into its output, so re-indented markup would split paragraphs
    differently. str.replace costs ~1% of an extraction (a regex fold of all whitespace ~15%).
    """
    if not _PREFORMATTED.search(page):
        return page.replace("\r", " ").replace("\n", " ")
    # split() yields [outside, block, tag name, outside, ...]: fold the outside parts only.
    parts = _PREFORMATTED.split(page)
    return "".join(
        part.replace("\r", " ").replace("\n", " ") if i % 3 == 0 else part
        for i, part in enumerate(parts)
        if i % 3 != 2
    )


# --- headline ------------------------------------------------------------------------------

_TITLE_META = ("og:title", "twitter:title")
_TITLE_SEPARATORS = (" | ", " - ", " – ", " — ", " :: ", " · ")


def _first_text(values: object) -> str:
    texts = (" ".join(str(v).split()) for v in (values if isinstance(values, list) else ()))
    return next((text for text in texts if text), "")


def _strip_site_name(title: str, tree: HtmlElement, url: str) -> str:
    """Drop a trailing " | Site" when it names the site, so the headline is the story's own."""
    site = _first_text(tree.xpath('//meta[@property="og:site_name"]/@content')).casefold()
    host = urlsplit(url).hostname or ""
    for sep in _TITLE_SEPARATORS:
        head, found, tail = title.rpartition(sep)
        name = tail.strip().casefold()
        # The host, not the whole URL: a slug holds the headline's own words.
        if found and head and name and (name == site or name.replace(" ", "") in host):
            return head.strip()
    return title


def _title(tree: HtmlElement, url: str) -> str:
    """og/twitter title, else the only <h1> (several usually means logos), else <title>."""
    for name in _TITLE_META:
        title = _first_text(tree.xpath(f'//meta[@property="{name}" or @name="{name}"]/@content'))
        if title:
            return _strip_site_name(title, tree, url)
    headings = tree.xpath("//h1")
    if len(headings) == 1:
        title = " ".join(headings[0].text_content().split())
        if title:
            return str(title)
    return _strip_site_name(_first_text(tree.xpath("//title//text()")), tree, url)


# --- article -------------------------------------------------------------------------------

_MARKUP_ASIDE = re.compile(r"<!--.*?(?:-->|$)|<[?!][^>]*>?", re.S)
_FIRST_TAG = re.compile(r"<([A-Za-z][\w:.-]*)")
_FEED_ROOTS = frozenset({"rss", "feed", "rdf:rdf", "rdf"})


def _not_a_page(head: str) -> str | None:
    """Why a document that starts so is no article page: JSON, or an RSS/Atom/RDF feed.

    A feed's items would be stored as the article's text, and every new item read as an edit.
    """
    if head.lstrip("\ufeff \t\r\n").startswith("{"):
        return "JSON, not an article page"
    first = _FIRST_TAG.search(_MARKUP_ASIDE.sub("", head))
    if first is not None and first.group(1).lower() in _FEED_ROOTS:
        return "a feed, not an article page"
    return None


def _body(tree: HtmlElement, url: str) -> str:
    """One trafilatura pass over the parsed tree (trafilatura works on its own copy)."""
    document = trafilatura.bare_extraction(
        tree,
        url=url,
        # Measured on the 91-page corpus: F1 0.975 against 0.965 for the default balanced
        # mode, same CPU. Fewer teaser and "related" blocks get in, and those churn.
        favor_precision=True,
        # Reader comments are not the story, and their churn would read as edits.
        include_comments=False,
        # Tables hold figures that get revised; without them F1 fell to 0.958.
        include_tables=True,
        # The dedup cache is process-wide: re-extracting a page would come back empty.
        deduplicate=False,
        with_metadata=False,
    )
    raw = getattr(document, "text", None) or ""
    return "\n".join(line.rstrip() for line in raw.splitlines() if line.strip())


def extract_article(html: str | bytes, url: str, *, content_type: str | None = None) -> Extracted:
    """Headline and body of a news page; ExtractError when there is no body text.

    ``content_type`` is the HTTP Content-Type: its charset outranks the page's <meta>.
    """
    page = _decode(html, _http_charset(content_type)) if isinstance(html, bytes) else html
    head = page[:2048]
    if not page or page.isspace():
        raise ExtractError(url, "empty document")
    if len(_CONTROL_CHARS.findall(head)) > len(head) // 20:
        raise ExtractError(url, "binary content, not HTML")
    if "<" not in page:
        raise ExtractError(url, "no HTML markup")
    if reason := _not_a_page(head):
        raise ExtractError(url, reason)
    try:
        tree = trafilatura.load_html(_fold_source_newlines(page))
        title, body = (_title(tree, url), _body(tree, url)) if tree is not None else ("", "")
    except Exception as err:
        # Third-party parsing of arbitrary pages: a crash there means "no text", not a dead poll.
        log.warning("extractor failed on %s: %r", url, err)
        raise ExtractError(url, f"extractor failed: {type(err).__name__}") from err
    if tree is None:
        raise ExtractError(url, "not parseable as HTML")
    if len(body) < MIN_BODY_CHARS:
        raise ExtractError(url, f"no article text found ({len(body)} characters)")
    log.debug("extracted %s: %d lines, title %r", url, body.count("\n") + 1, title)
    return Extracted(title=title, text=body)


# --- feed fragments ------------------------------------------------------------------------

_BLOCK_TAGS = _words(
    "address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 "
    "h6 header hr li main nav ol p pre section table td th tr ul"
)
_SKIP_TAGS = _words("script style noscript template iframe object svg head")
# Characters libxml2 refuses in a str; feed junk does contain them.
_XML_INVALID = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _fragment_lines(root: etree._Element) -> list[str]:
    parts: list[str] = []
    # iterwalk, not recursion: hostile nesting depth cannot reach the recursion limit.
    walker = etree.iterwalk(root, events=("start", "end"))
    for event, element in walker:
        tag = str(element.tag)
        parts.append("\n" if tag in _BLOCK_TAGS else "")
        if event == "start" and tag in _SKIP_TAGS:
            walker.skip_subtree()
            continue
        text = element.text if event == "start" else element.tail if element is not root else ""
        # Lines come from block boundaries only: a newline in markup text renders as a space.
        parts.append((text or "").replace("\r", " ").replace("\n", " "))
    return "".join(parts).splitlines()


def fragment_to_text(html: str) -> str:
    """A feed entry's summary/content (HTML or plain text) -> text, one paragraph per line."""
    cleaned = _XML_INVALID.sub("", html or "")
    lines = cleaned.splitlines()
    if "<" in cleaned or "&" in cleaned:
        try:
            # A parser per call: lxml parsers must not be shared between threads. Comments
            # go at parse time so that their tails join the surrounding text.
            parser = etree.HTMLParser(recover=True, remove_comments=True, remove_pis=True)
            root = etree.fromstring(f"<div>{cleaned}</div>", parser)
            lines = _fragment_lines(root) if root is not None else []
        except (etree.LxmlError, ValueError) as err:
            log.debug("feed fragment not parseable, kept as text: %r", err)
    return "\n".join(" ".join(line.split()) for line in lines if line.strip())


# --- normalisation -------------------------------------------------------------------------

_TYPOGRAPHY = {
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2035\u2039\u203a\uff07", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u2036\u00ab\u00bb\uff02", '"'),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d", "-"),
    **dict.fromkeys("\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007", " "),
    **dict.fromkeys("\u2008\u2009\u200a\u202f\u205f\u3000", " "),
    # Invisible: zero-width space, word joiner, BOM, soft hyphen. ZWJ and ZWNJ stay, as they
    # change how Indic, Persian and emoji text reads.
    **dict.fromkeys("\u200b\u2060\ufeff\u00ad", ""),
    "\u2026": "...",
}
# A regex finds the few characters to replace 3x faster than str.translate scans them all.
_TYPOGRAPHIC = re.compile("[" + "".join(_TYPOGRAPHY) + "]")


def _untypographic(match: re.Match[str]) -> str:
    return _TYPOGRAPHY[match.group()]


def normalise(text: str) -> str:
    """Comparison form: NFC, typographic variants unified, whitespace folded, no blank lines."""
    text = unicodedata.normalize("NFC", text)
    if not text.isascii():
        # NFC again after the replacements: dropping a soft hyphen between a letter and its
        # accent makes a new pair to compose. (NFC first turns U+2000/2001 into spaces we
        # map.) Replacements are ASCII or nothing, so a second normalise changes nothing.
        text = unicodedata.normalize("NFC", _TYPOGRAPHIC.sub(_untypographic, text))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


_DIGIT = re.compile(r"\d")


def _mask(plain: str) -> str:
    return " ".join("0" if _DIGIT.search(token) else token for token in plain.casefold().split())


def mask_line(line: str) -> str:
    """Site-furniture key: casefolded comparison form, every token holding a digit -> "0"."""
    return _mask(normalise(line))


def line_keys(text: str) -> frozenset[str]:
    """The mask_line key of every line, for the store to learn what recurs across a site."""
    return frozenset(_mask(line) for line in normalise(text).split("\n") if line)


# --- generic furniture ---------------------------------------------------------------------

_STAMP_WORDS = _words("updated update published posted modified edited last first originally")
_DATE_WORDS = _words(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday "
    "saturday sunday mon tue tues wed thu fri sat sun sec secs second seconds min mins minute "
    "minutes h hr hrs hour hours day days week weeks month months year years utc gmt bst cet "
    "cest eet et est edt ct cst cdt mt mst mdt pt pst pdt ist aest jst z ago at on am pm a.m "
    "p.m just now today yesterday read reading time -"
)
_STAMP_VOCABULARY = _DATE_WORDS | _STAMP_WORDS
_NUMBER_TOKEN = re.compile(r"\d[\d:./+-]*(?:t[\d:.+-]*)?(?:st|nd|rd|th|am|pm|a\.m|p\.m|h|z)?")
_CLOCK = re.compile(r"\d{1,2}[:.]\d{2}(?:[:.]\d{2})?(?:am|pm|a\.m|p\.m|h|z)?")
_COUNTER_WORDS = _words(
    "view views comment comments share shares like likes read reads reply replies reaction "
    "reactions response responses"
)
_COUNT = re.compile(r"\d[\d,.]*[km]?")
_SHARE_WORDS = _words("share tweet pin")
_NETWORKS = _words(
    "facebook twitter x linkedin whatsapp email e-mail mail print pinterest reddit copy link "
    "messenger telegram flipboard sms bluesky threads mastodon"
)
_SHARE_FILLER = _words("this article story page on via to the with")


def _tokens(folded: str) -> list[str]:
    return [t for t in (token.strip(",;:|•·()[]\"'.!?") for token in folded.split()) if t]


def _is_stamp(tokens: list[str]) -> bool:
    """Time stamps: "Updated 5 minutes ago", "Published 19 Nov 2019, 10:30 GMT", "12:30"."""
    if "by" in tokens and len(tokens) - tokens.index("by") <= 5:
        # "5:45 AM PST 11/19/2019 by Jane Doe": the byline rides along with the stamp.
        tokens = tokens[: tokens.index("by")]
    if not all(token in _STAMP_VOCABULARY or _NUMBER_TOKEN.fullmatch(token) for token in tokens):
        return False
    words = set(tokens)
    number = any(_NUMBER_TOKEN.fullmatch(token) for token in tokens)
    relative = bool(words & {"ago", "now", "today", "yesterday"})
    if words & _STAMP_WORDS:
        return number or relative
    # A bare date ("March 3, 2020") may head a timeline section: it needs a stamp word.
    clock = any(_CLOCK.fullmatch(token) for token in tokens)
    return clock or relative or (number and bool(words & {"read", "reading"}))


def _is_counter(tokens: list[str]) -> bool:
    """Counters: "1,234 views", "12 comments", "Comments (3)", "1.2k shares · 40 likes"."""
    counts = [bool(_COUNT.fullmatch(token)) for token in tokens]
    named = [token in _COUNTER_WORDS for token in tokens]
    return any(counts) and any(named) and all(c or n for c, n in zip(counts, named, strict=True))


def _is_share_bar(tokens: list[str]) -> bool:
    """Share buttons: "Share this article", "Share on Facebook", "Facebook Twitter Email"."""
    words = set(tokens)
    if len(tokens) > 10 or not words <= _SHARE_WORDS | _NETWORKS | _SHARE_FILLER:
        return False
    return bool(words & _SHARE_WORDS) or len(words & _NETWORKS) >= 2


# On the original case: a name between "Copyright" and the year is capitalised, which keeps
# "Copyright law changed in 2019" out.
_COPYRIGHT = re.compile(
    r"(?:©|(?:\((?i:c)\)|(?i:copyright))\s*(?:©\s*)?(?:[A-Z][\w&.,'-]*\s+){0,4}\d{4}\b).{0,100}"
)
# Box headers, after trailing ":", "...", arrows: the whole line is the header.
_BOX_HEADER = re.compile(
    r"most (?:read|popular|viewed|shared|commented|watched)(?: in [\w' -]{1,30}| \w+)?"
    r"|popular(?: now)?|trending(?: now| stories| news)?|more|also|see also|further reading"
    r"|related(?: articles?| stories| news| content| coverage| links| posts| topics| reading)?"
    r"|recommended(?: for you| stories| articles| reading)?|top stories|latest (?:news|stories)"
    r"|you (?:may|might) (?:also )?(?:like|enjoy|be interested in)|up next|what to read next"
    r"|more (?:from|on) [\w' .-]{1,30}|more (?:stories|news|articles|videos)|read (?:more|next)"
    r"|don't miss|editor's picks?"
)
# Whole-line patterns on the casefolded form, anchored or tightly bounded so that a body
# sentence that merely contains one of these words does not match. Joined into one regex:
# a single pass per line.
_LINE_PATTERNS = (
    r"^.{0,80}\ball rights reserved\b.{0,20}$",
    r"^(?:advertisements?|advertising|ads?|sponsored(?: content| links?)?|paid (?:content|post)"
    r"|promoted(?: content)?|partner content|skip (?:advertisement|ad)|ad feedback"
    r"|report this ad|advertise with us)$",
    r"^(?:the )?(?:story|article|content) continues (?:below|after)\b.{0,30}$",
    r"^(?:continue reading (?:below|the main story)|scroll (?:down )?to continue\b.{0,40})$",
    # a link to another story, or the story's tag list
    r"^(?:related|see more|read more|more|also read|read also|see also|recommended|most read"
    r"|filed under|tags?|topics?|categories|category)\s*:.{0,150}$",
    # newsletter boxes
    r"^(?:sign ?up|sign-up|subscribe|register|join|get|receive)\b.{0,120}"
    r"\b(?:newsletters?|inbox|e-?mail (?:updates|alerts))\b.{0,60}$",
    r"^[\w' -]{0,40}\bnewsletters?(?: sign[- ]?up)?$",
    r"^(?:thank you|thanks) for (?:signing up|subscribing)\b.{0,100}$",
    r"^by (?:signing up|subscribing|registering|clicking)\b.{0,150}\b(?:agree|privacy|terms)\b",
    r"^(?:enter your e-?mail|please enter a valid e-?mail|invalid e-?mail)\b.{0,60}$",
    # comment widgets and policies
    r"^(?:comments?|commenting|discussion)(?: (?:is|are|has been|have been))?"
    r" (?:now )?(?:closed|disabled|moderated|turned off)\b.{0,120}$",
    r"^(?:please|we)\b[\w' ,]{0,40}\b(?:welcome|reserve|moderate|review|keep|ask|encourage"
    r"|remove|delete)\b.{0,80}\bcomments?\b.{0,120}$",
    r"^(?=.{0,200}$).*\b(?:our|your)\b.*\b(?:comment(?:s|ing)?|community)"
    r" (?:policy|guidelines|rules|standards)\b",
    r"^(?:view|show|hide|load|read|see|open) (?:all |more )?(?:\d+ )?comments?\b.{0,20}$",
    r"^(?:leave|post|add|write) (?:a|your) (?:comment|reply)\b.{0,40}$",
    r"^(?:be the first to (?:comment|reply)|join the (?:conversation|discussion))\b.{0,40}$",
    r"^by (?:commenting|posting a comment|submitting a comment)\b.{0,200}$",
    r"^comments?$",
)
_LINE_FURNITURE = re.compile("|".join(f"(?:{pattern})" for pattern in _LINE_PATTERNS))
_LIST_MARKERS = ("- ", "* ", "• ")


def is_generic_furniture(line: str) -> bool:
    """Site-independent furniture: stamps, clocks, counters, ads, newsletter/comment boxes."""
    return _is_furniture(" ".join(normalise(line).split()))


def _is_furniture(plain: str) -> bool:
    """is_generic_furniture on one line already in comparison form."""
    if plain[:2] in _LIST_MARKERS:
        plain = plain[2:]  # trafilatura writes list items as "- item"
    if not plain or len(plain) > 250:
        return False
    folded = plain.casefold()
    tokens = _tokens(folded)
    short = len(folded) <= 80 and bool(tokens)
    if short and (_is_stamp(tokens) or _is_counter(tokens) or _is_share_bar(tokens)):
        return True
    if _COPYRIGHT.fullmatch(plain) or _BOX_HEADER.fullmatch(folded.rstrip(":.>›»→ ")):
        return True
    return _LINE_FURNITURE.search(folded) is not None


# --- what versions are compared on ---------------------------------------------------------


def comparable_text(text: str, site_furniture: Collection[str] = ()) -> str:
    """Normalised text minus furniture lines; versions are hashed and diffed on this."""
    kept = [
        line
        for line in normalise(text).split("\n")
        if line
        and not _is_furniture(line)
        and not (site_furniture and _mask(line) in site_furniture)
    ]
    return "\n".join(kept)


def content_hash(title: str, comparable: str) -> str:
    """sha256 hex over the normalised headline and the comparable text."""
    head = normalise(title)
    # Length-prefixed, so that no split of the same characters between title and body collides.
    payload = f"{len(head)}:{head}\n{comparable}"
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()
