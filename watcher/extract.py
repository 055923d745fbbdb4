"""Extract stage: HTML page -> article text, and the text forms versions are compared on.

Three layers, each cheap next to the one trafilatura pass that dominates the cost:

* ``extract_article`` decodes the page, parses it once, takes the headline from the parsed
  tree and the body from trafilatura (no metadata pass: htmldate alone costs ~35% more).
* ``normalise`` irons out typography and whitespace so that only wording differences remain.
* ``comparable_text`` drops page furniture: lines recognised by site-independent rules
  (``is_generic_furniture``) and lines the store has seen recur across a site's articles
  (keys made by ``mask_line``). Versions are hashed and diffed on this text.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass

import trafilatura

# lxml ships no type information and the project config only exempts the packages it lists.
from lxml import etree  # type: ignore[import-untyped]
from lxml.html import HtmlElement  # type: ignore[import-untyped]

from watcher.errors import ExtractError

log = logging.getLogger(__name__)


def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


__all__ = [
    "Extracted",
    "comparable_text",
    "content_hash",
    "extract_article",
    "fragment_to_text",
    "is_generic_furniture",
    "line_keys",
    "mask_line",
    "normalise",
]


@dataclass(frozen=True)
class Extracted:
    """What the extract stage hands on: headline and body, one paragraph per line."""

    title: str
    text: str


# --- decoding ------------------------------------------------------------------------------

# UTF-32 BOMs first: the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]{0,300}?charset\s*=\s*["']?\s*([\w.:-]{1,40})""", re.I)
# The WHATWG encoding spec reads these labels as windows-1252, and so do browsers.
_LATIN1_LABELS = frozenset({"iso8859-1", "latin-1", "ascii"})
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f]")


def _declared_codec(data: bytes) -> str | None:
    match = _META_CHARSET.search(data, 0, 4096)
    if match is None:
        return None
    try:
        name = codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None
    if name in _LATIN1_LABELS:
        return "cp1252"
    # A page that can declare UTF-16 in ASCII-compatible bytes is not UTF-16 (WHATWG rule).
    return None if name.startswith("utf-16") or name.startswith("utf-32") else name


def _decode(data: bytes) -> str:
    """Bytes -> text without ever raising: BOM, then UTF-8, then the declared charset."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    try:
        # Valid UTF-8 with non-ASCII bytes is almost never anything else, whatever the page
        # declares, and mislabelled UTF-8 is common; ASCII pages decode the same either way.
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return data.decode(_declared_codec(data) or "cp1252", errors="replace")


def _looks_binary(text: str) -> bool:
    head = text[:2048]
    return len(_CONTROL_CHARS.findall(head)) > len(head) // 20


# --- title ---------------------------------------------------------------------------------

_TITLE_META = (
    '//meta[@property="og:title"]/@content',
    '//meta[@name="twitter:title"]/@content',
    '//meta[@property="twitter:title"]/@content',
)
_TITLE_SEPARATORS = (" | ", " - ", " – ", " — ", " :: ", " · ")


def _first_text(values: object) -> str:
    if isinstance(values, list):
        for value in values:
            text = " ".join(str(value).split())
            if text:
                return text
    return ""


def _strip_site_name(title: str, tree: HtmlElement, url: str) -> str:
    """Drop a trailing " | Site" when the site name is known, so the headline is the story's."""
    site = _first_text(tree.xpath('//meta[@property="og:site_name"]/@content')).casefold()
    host = url.casefold()
    for sep in _TITLE_SEPARATORS:
        head, found, tail = title.rpartition(sep)
        if found and head:
            name = tail.strip().casefold()
            if name == site or (name and name.replace(" ", "") in host):
                return head.strip()
    return title


def _title(tree: HtmlElement, url: str) -> str:
    """Headline from the parsed page: og/twitter title, a sole <h1>, else <title>."""
    for path in _TITLE_META:
        title = _first_text(tree.xpath(path))
        if title:
            return _strip_site_name(title, tree, url)
    headings = tree.xpath("//h1")
    # Several <h1> usually means the logo or section names are <h1> too.
    if len(headings) == 1 and isinstance(headings[0], HtmlElement):
        title = " ".join(headings[0].text_content().split())
        if title:
            return title
    return _strip_site_name(_first_text(tree.xpath("//title//text()")), tree, url)


# --- article extraction --------------------------------------------------------------------

_PREFORMATTED = re.compile(r"(<(pre|textarea)\b.*?</\2\s*>)", re.I | re.S)


def _fold_source_newlines(page: str) -> str:
    """Source line breaks -> spaces, outside <pre>/<textarea>.

    HTML renders a newline in text as a space, but trafilatura copies it into its output, so
    re-indented markup would otherwise split paragraphs differently. str.replace keeps this
    at ~1% of the extraction cost (a regex fold of all whitespace cost ~15%).
    """
    if not _PREFORMATTED.search(page):
        return page.replace("\r", " ").replace("\n", " ")
    parts = _PREFORMATTED.split(page)
    # split() yields [outside, block, tag name, outside, ...]: fold only the outside parts.
    return "".join(
        part.replace("\r", " ").replace("\n", " ") if i % 3 == 0 else part
        for i, part in enumerate(parts)
        if i % 3 != 2
    )



def _body(tree: HtmlElement, url: str) -> str:
    """One trafilatura pass over an already parsed tree (trafilatura copies it first)."""
    document = trafilatura.bare_extraction(
        tree,
        url=url,
        # Precision mode: measured F1 0.975 vs 0.965 balanced on the 91-page corpus, at the
        # same cost, and it keeps more "related"/teaser boxes out, which is what causes noise.
        favor_precision=True,
        # Reader comments are not the article; their churn would read as edits.
        include_comments=False,
        # Tables carry facts (results, figures) that get revised; dropping them lost recall.
        include_tables=True,
        # The dedup cache is process-wide: re-extracting a page would come back empty.
        deduplicate=False,
        with_metadata=False,
    )
    if document is None or isinstance(document, dict):
        return ""
    raw = document.text or ""
    return "\n".join(line.rstrip() for line in raw.splitlines() if line.strip())


def extract_article(html: str | bytes, url: str) -> Extracted:
    """Headline and body of a news page; raises ExtractError when there is no body text."""
    text = _decode(html) if isinstance(html, bytes) else html
    if not text.strip():
        raise ExtractError(url, "empty document")
    if _looks_binary(text):
        raise ExtractError(url, "binary content, not HTML")
    if "<" not in text:
        raise ExtractError(url, "no HTML markup")
    try:
        tree = trafilatura.load_html(_fold_source_newlines(text))
        if tree is None:
            raise ExtractError(url, "not parseable as HTML")
        title, body = _title(tree, url), _body(tree, url)
    except ExtractError:
        raise
    except Exception as err:
        # Third-party parsing of arbitrary pages: any crash means "no text", never a poll crash.
        log.warning("extractor failed on %s: %r", url, err)
        raise ExtractError(url, f"extractor failed: {type(err).__name__}") from err
    if not body:
        raise ExtractError(url, "no article text found")
    log.debug("extracted %s: %d lines, title %r", url, body.count("\n") + 1, title)
    return Extracted(title=title, text=body)


# --- feed fragments ------------------------------------------------------------------------

_BLOCK_TAGS = _words(
    "address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 "
    "h6 header hr li main nav ol p pre section table td th tr ul"
)
_SKIP_TAGS = _words("script style noscript template iframe object svg head")
# Characters libxml2 refuses (or mangles) in a str; feed junk does contain them.
_XML_INVALID = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _fragment_lines(root: etree._Element) -> list[str]:
    parts: list[str] = []
    # iterwalk, not recursion: hostile nesting depth cannot hit the recursion limit.
    walker = etree.iterwalk(root, events=("start", "end"))
    for event, element in walker:
        tag = str(element.tag)
        block = "\n" if tag in _BLOCK_TAGS else ""
        if event == "start":
            parts.append(block)
            if tag in _SKIP_TAGS:
                walker.skip_subtree()
            else:
                parts.append(element.text or "")
        else:
            parts.append(block)
            if element is not root:
                parts.append(element.tail or "")
    return "".join(parts).splitlines()


def fragment_to_text(html: str) -> str:
    """Feed summary/content (HTML or plain text) -> plain text, one paragraph per line."""
    cleaned = _XML_INVALID.sub("", html or "")
    lines: list[str] = cleaned.splitlines()
    if "<" in cleaned or "&" in cleaned:
        try:
            # A parser per call: lxml parsers must not be shared between threads. Comments and
            # PIs go at parse time so their tails merge into the surrounding text.
            parser = etree.HTMLParser(recover=True, remove_comments=True, remove_pis=True)
            root = etree.fromstring(f"<div>{cleaned}</div>", parser)
            lines = _fragment_lines(root) if root is not None else []
        except (etree.LxmlError, ValueError) as err:
            log.debug("feed fragment not parseable, using it as text: %r", err)
    return "\n".join(" ".join(line.split()) for line in lines if line.strip())


# --- normalisation -------------------------------------------------------------------------


def _typography_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for chars, replacement in (
        ("\u2018\u2019\u201a\u201b\u2032\u2035\u2039\u203a\uff07", "'"),
        ("\u201c\u201d\u201e\u201f\u2033\u2036\u00ab\u00bb\uff02", '"'),
        ("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d", "-"),
        ("\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a", " "),
        ("\u202f\u205f\u3000", " "),
        # Zero-width space, word joiner, BOM and soft hyphen are invisible: drop them. ZWJ and
        # ZWNJ stay, they change how Indic, Persian and emoji text reads.
        ("\u200b\u2060\ufeff\u00ad", ""),
        ("\u2026", "..."),
    ):
        table.update(dict.fromkeys(map(ord, chars), replacement))
    return table


_TYPOGRAPHY = _typography_table()


def normalise(text: str) -> str:
    """Comparison form: NFC, typographic variants unified, whitespace folded, no blank lines."""
    # NFC both sides of the translation: NFC first turns U+2000/2001 into spaces we map, and
    # dropping a soft hyphen between a letter and a combining mark can make a new pair to
    # compose. Nothing in the table's output composes or maps again, so this is a fixpoint.
    text = unicodedata.normalize("NFC", text)
    text = unicodedata.normalize("NFC", text.translate(_TYPOGRAPHY))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


_HAS_DIGIT = re.compile(r"\d")


def mask_line(line: str) -> str:
    """Site-furniture key: casefolded comparison form with every token holding a digit -> 0."""
    tokens = normalise(line).casefold().split()
    return " ".join("0" if _HAS_DIGIT.search(token) else token for token in tokens)


def line_keys(text: str) -> frozenset[str]:
    """The masked key of every line, for the store to learn which lines recur on a site."""
    return frozenset(mask_line(line) for line in normalise(text).split("\n") if line)


# --- generic furniture ---------------------------------------------------------------------


_MONTHS = (
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
)
_WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu fri sat"
_UNITS = (
    "sec secs second seconds min mins minute minutes h hr hrs hour hours day days week weeks "
    "month months year years"
)
_ZONES = "utc gmt bst cet cest eet eest et est edt ct cst cdt mt mst mdt pt pst pdt ist aest jst z"
_STAMP_WORDS = _words(
    "updated update published posted modified edited created last first originally"
)
_DATE_WORDS = frozenset(
    f"{_MONTHS} {_WEEKDAYS} {_UNITS} {_ZONES} ago at on am pm a.m p.m just now today yesterday "
    "read reading time - by".split()
)
_NUMBER_TOKEN = re.compile(r"\d[\d:./+-]*(?:t[\d:.+-]*)?(?:st|nd|rd|th|am|pm|a\.m|p\.m|h|z)?")
_CLOCK = re.compile(r"\d{1,2}[:.]\d{2}(?:[:.]\d{2})?(?:am|pm|a\.m|p\.m|h|z)?")
_TOKEN_PUNCT = ",;:|•·()[]\"'.!?"


def _tokens(line: str) -> list[str]:
    return [t for t in (token.strip(_TOKEN_PUNCT) for token in line.split()) if t]


def _is_stamp(line: str, tokens: list[str]) -> bool:
    """Lines like "Updated 5 minutes ago", "Published 19 Nov 2019, 10:30 GMT", "4 min read", "12:30"."""
    if len(line) > 80 or not tokens:
        return False
    for token in tokens:
        known = token in _DATE_WORDS or token in _STAMP_WORDS
        if not known and not _NUMBER_TOKEN.fullmatch(token):
            return False
    words = set(tokens)
    has_number = any(_NUMBER_TOKEN.fullmatch(token) for token in tokens)
    relative = bool(words & {"ago", "now", "today", "yesterday"})
    if words & _STAMP_WORDS:
        return has_number or relative
    # A bare date ("March 3, 2020") can be a timeline heading: only clocks and relative
    # times count without a stamp word.
    clock = any(_CLOCK.fullmatch(token) for token in tokens)
    return clock or relative or (has_number and "read" in words)


_COUNTER_WORDS = _words(
    "view views comment comments share shares like likes read reads reply replies reaction "
    "reactions response responses"
)
_COUNT = re.compile(r"\d[\d,.]*[km]?")


def _is_counter(line: str, tokens: list[str]) -> bool:
    """Lines like "1,234 views", "12 comments", "Comments (3)", "1.2k shares · 40 likes"."""
    if len(line) > 60 or not tokens:
        return False
    counts = [bool(_COUNT.fullmatch(token)) for token in tokens]
    words = [token in _COUNTER_WORDS for token in tokens]
    return any(counts) and any(words) and all(c or w for c, w in zip(counts, words, strict=True))


_SHARE_WORDS = _words("share tweet pin")
_NETWORKS = _words(
    "facebook twitter x linkedin whatsapp email e-mail mail print pinterest reddit copy link "
    "messenger telegram flipboard sms bluesky threads mastodon"
)
_SHARE_FILLER = _words("this article story page on via to the with")


def _is_share_bar(tokens: list[str]) -> bool:
    """Lines like "Share this article", "Share on Facebook", "Facebook Twitter Email"."""
    if not tokens or len(tokens) > 10:
        return False
    words = set(tokens)
    if not words <= _SHARE_WORDS | _NETWORKS | _SHARE_FILLER:
        return False
    return bool(words & _SHARE_WORDS) or len(words & _NETWORKS) >= 2


# Whole-line patterns on the casefolded comparison form; each is anchored or guarded so that
# a body sentence merely containing one of these words does not match.
_LINE_PATTERNS = tuple(
    re.compile(pattern)
    for pattern in (
        # copyright notices: the year must follow the mark directly
        r"^(?:©|\(c\)|copyright\s*(?:©|\(c\))?)\s*(?:\d{4}|[^\d\s]).{0,90}$",
        r"^.{0,80}\ball rights reserved\b.{0,20}$",
        # advertising slots
        r"^(?:advertisements?|advertising|ads?|sponsored(?: content| links?)?|paid (?:content|post)"
        r"|promoted(?: content)?|partner content|skip (?:advertisement|ad)|ad feedback"
        r"|report this ad|advertise with us)$",
        r"^(?:the )?(?:story|article|content) continues (?:below|after)\b.{0,30}$",
        r"^continue reading (?:below|the main story)$",
        r"^scroll (?:down )?to continue\b.{0,40}$",
        # newsletter sign-up boxes
        r"^(?:sign ?up|sign-up|subscribe|register|join|get|receive)\b.{0,120}"
        r"\b(?:newsletters?|inbox|e-?mail (?:updates|alerts))\b.{0,60}$",
        r"^[\w' -]{0,40}\bnewsletters?(?: sign[- ]?up)?$",
        r"^(?:thank you|thanks) for (?:signing up|subscribing)\b.{0,100}$",
        r"^by (?:signing up|subscribing|registering|clicking)\b.{0,150}\b(?:agree|privacy|terms)\b",
        r"^(?:enter your e-?mail|please enter a valid e-?mail|invalid e-?mail)\b.{0,60}$",
        # comment-policy and comment-widget lines
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
)
# Box headers: the entire line is the header (after trailing ":", arrows, "»").
_BOX_HEADERS = re.compile(
    r"(?:most (?:read|popular|viewed|shared|commented|watched)(?: \w+)?|popular(?: now)?"
    r"|trending(?: now| stories| news)?|related(?: articles?| stories| news| content| coverage"
    r"| links| posts| topics| reading)?|recommended(?: for you| stories| articles| reading)?"
    r"|you (?:may|might) (?:also )?(?:like|enjoy|be interested in)|more (?:from|on) [\w' .-]{1,30}"
    r"|more (?:stories|news|articles|videos)|read (?:more|next|this next)|up next"
    r"|what to read next|don't miss|editor's picks?|top stories|latest (?:news|stories)"
    r"|further reading|see also)"
)
_HEADER_TRIM = ": >›»→-"


def is_generic_furniture(line: str) -> bool:
    """Site-independent furniture: stamps, clocks, counters, ads, newsletter/comment boxes."""
    folded = " ".join(normalise(line).casefold().split())
    if not folded or len(folded) > 250:
        return False
    tokens = _tokens(folded)
    if _is_stamp(folded, tokens) or _is_counter(folded, tokens) or _is_share_bar(tokens):
        return True
    if _BOX_HEADERS.fullmatch(folded.strip(_HEADER_TRIM)):
        return True
    return any(pattern.search(folded) for pattern in _LINE_PATTERNS)


# --- what versions are compared on ---------------------------------------------------------


def comparable_text(text: str, site_furniture: Collection[str] = ()) -> str:
    """Normalised text without furniture lines; versions are hashed and diffed on this."""
    kept = [
        line
        for line in normalise(text).split("\n")
        if line
        and not is_generic_furniture(line)
        and not (site_furniture and mask_line(line) in site_furniture)
    ]
    return "\n".join(kept)


def content_hash(title: str, comparable: str) -> str:
    """sha256 hex over the normalised headline and the comparable text."""
    head = normalise(title)
    # Length-prefixed so no title/body split of the same characters can collide.
    payload = f"{len(head)}:{head}\n{comparable}"
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()
