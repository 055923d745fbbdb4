"""Extract stage: HTML page -> article text, and the text that versions are compared on.

* ``extract_article`` decodes and parses the page once, takes the headline from the parsed
  tree and the body from one trafilatura pass. Its metadata pass is skipped on purpose: its
  date search alone made the stage ~35% slower than bare ``trafilatura.extract``.
* Hover cards (a person's name, their latest stories, "MORE") are taken out of paragraphs
  before trafilatura reads the tree: inside a sentence they are noise that churns.
* ``fragment_to_text`` turns a feed entry's HTML into the same one-paragraph-per-line text.

Decoding bytes is :mod:`watcher.pipeline.decode`; what versions are compared on (normalised,
without furniture) is :mod:`watcher.pipeline.normalise`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import trafilatura

# lxml ships no type information, and the mypy config only exempts the packages it lists.
from lxml import etree  # type: ignore[import-untyped]
from lxml.html import HtmlElement  # type: ignore[import-untyped]

from watcher.errors import ExtractError
from watcher.pipeline.decode import CONTROL_CHARS, decode_bytes, fold_source_newlines, http_charset
from watcher.pipeline.htmltree import parse_page
from watcher.pipeline.normalise import word_set
from watcher.pipeline.recall import dropped_paragraphs

log = logging.getLogger(__name__)

# Below this, what trafilatura found is a stray link or label ("Home"), not a story.
MIN_BODY_CHARS = 20


@dataclass(frozen=True)
class Extracted:
    """Headline ("" if none) and body as extracted, one paragraph per line.

    ``extra`` holds the paragraphs of the article's region that the extractor dropped (see
    :mod:`watcher.pipeline.recall`): compared beside the body, never shown as the story.
    """

    title: str
    text: str
    extra: str = ""


# --- headline ------------------------------------------------------------------------------

_TITLE_META = ("og:title", "twitter:title")
_TITLE_SEPARATORS = (" | ", " - ", " – ", " — ", " :: ", " · ")


def _first_text(values: object) -> str:
    texts = (" ".join(str(v).split()) for v in (values if isinstance(values, list) else ()))
    return next((text for text in texts if text), "")


def _strip_site_name(title: str, metas: dict[str, list[str]], url: str) -> str:
    """Drop a trailing " | Site" when it names the site, so the headline is the story's own."""
    site = _first_text(metas["og:site_name"]).casefold()
    host = urlsplit(url).hostname or ""
    for sep in _TITLE_SEPARATORS:
        head, found, tail = title.rpartition(sep)
        name = tail.strip().casefold()
        # The host, not the whole URL: a slug holds the headline's own words.
        if found and head and name and (name == site or name.replace(" ", "") in host):
            return head.strip()
    return title


# The <meta>s the headline is read from: Open Graph's by property=, the titles by name= too.
_BY_PROPERTY = frozenset((*_TITLE_META, "og:site_name"))
_BY_NAME = frozenset(_TITLE_META)


def _metas(tree: HtmlElement) -> dict[str, list[str]]:
    """The content of those <meta>s, by name, in document order: one walk of the page's
    metas (an XPath per name walked the whole tree each time)."""
    found: dict[str, list[str]] = {name: [] for name in _BY_PROPERTY}
    for meta in tree.iter("meta"):
        content = meta.get("content")
        if content is None:
            continue
        # A set: a meta naming one title both ways is one meta, as XPath's "or" counts it.
        names = {meta.get("property")} & _BY_PROPERTY | {meta.get("name")} & _BY_NAME
        for name in names:
            found[name].append(content)
    return found


def _title(tree: HtmlElement, url: str) -> str:
    """og/twitter title, else the only <h1> (several usually means logos), else <title>."""
    metas = _metas(tree)
    for name in _TITLE_META:
        title = _first_text(metas[name])
        if title:
            return _strip_site_name(title, metas, url)
    headings = tree.xpath("//h1")
    if len(headings) == 1:
        title = " ".join(headings[0].text_content().split())
        if title:
            return str(title)
    return _strip_site_name(_first_text(tree.xpath("//title//text()")), metas, url)


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


# Inline elements a hover card or a share row is built from, inside a paragraph.
_INLINE = ("span", "em", "strong", "b", "i", "small", "font", "sup", "sub", "u", "mark")


def _is_link_cluster(element: HtmlElement) -> bool:
    """Two or more links to different pages run together with no word outside them: read
    inside a sentence they make no sense ("Kristi NoemKristi Lynn NoemSouth Dakota drops...").
    Words or punctuation between the links ("A, B and C") make them part of the prose."""
    links = list(element.iter("a"))
    if len({link.get("href") for link in links}) < 2:
        return False
    in_links = sum(_visible_chars(link.text_content()) for link in links)
    return _visible_chars(element.text_content()) == in_links


def _visible_chars(text: str) -> int:
    return len("".join(text.split()))


def _drop_link_clusters(tree: HtmlElement) -> None:
    """Take the hover cards out of paragraphs before extraction.

    Some CMSes put a person's card (their name, their latest stories, "MORE") inside the
    sentence that names them, shown on hover. Extracted, it breaks the sentence, and it
    changes whenever the person is in a new story: a version for nothing. Innermost first,
    so the name link the card hangs on stays in the sentence.
    """
    for paragraph in tree.iter("p"):
        # A cluster links two pages: a paragraph that links fewer holds none (most do not).
        if len({link.get("href") for link in paragraph.iter("a")}) < 2:
            continue
        for element in reversed(list(paragraph.iterdescendants(*_INLINE))):
            if _is_link_cluster(element):
                element.drop_tree()  # keeps its tail: the sentence goes on


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
    page = decode_bytes(html, http_charset(content_type)) if isinstance(html, bytes) else html
    head = page[:2048]
    if not page or page.isspace():
        raise ExtractError(url, "empty document")
    if len(CONTROL_CHARS.findall(head)) > len(head) // 20:
        raise ExtractError(url, "binary content, not HTML")
    if "<" not in page:
        raise ExtractError(url, "no HTML markup")
    if reason := _not_a_page(head):
        raise ExtractError(url, reason)
    try:
        tree = parse_page(fold_source_newlines(page))
        if tree is not None:
            _drop_link_clusters(tree)
        title, body = (_title(tree, url), _body(tree, url)) if tree is not None else ("", "")
        extra = dropped_paragraphs(tree, body) if tree is not None and body else ""
    except Exception as err:
        # Third-party parsing of arbitrary pages: a crash there means "no text", not a dead poll.
        log.warning("extractor failed on %s: %r", url, err)
        raise ExtractError(url, f"extractor failed: {type(err).__name__}") from err
    if tree is None:
        raise ExtractError(url, "not parseable as HTML")
    if len(body) < MIN_BODY_CHARS:
        raise ExtractError(url, f"no article text found ({len(body)} characters)")
    log.debug("extracted %s: %d lines, title %r", url, body.count("\n") + 1, title)
    return Extracted(title=title, text=body, extra=extra)


# --- feed fragments ------------------------------------------------------------------------

_BLOCK_TAGS = word_set(
    "address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 "
    "h6 header hr li main nav ol p pre section table td th tr ul"
)
_SKIP_TAGS = word_set("script style noscript template iframe object svg head")
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
