"""Feed stage: fetched bytes -> feed entries with a stable identity.

RSS 0.9x/1.0/2.0 and Atom go through feedparser; JSON Feed is read here, because
feedparser 6.0 does not understand it. feedparser is always handed a byte stream, never a
string: given a string (or bytes naming an existing file) it would fetch a URL or open a
local file by itself. Nor is it handed every document as fetched (see
:mod:`watcher.pipeline.feedsafe`): UTF-8 with a few invalid bytes is repaired first, and a
document that declares entities gets a prolog of our own, as entity expansion is the one way
a small feed can grow huge.

An entry's identity (:attr:`FeedEntry.key`) is its guid/id when it has one, else its
canonical URL (:mod:`watcher.pipeline.urls`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import xml.sax
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from watcher.errors import FeedError
from watcher.pipeline.feedsafe import prepare_document
from watcher.pipeline.urls import canonical_url, userinfo_allowed, without_userinfo
from watcher.records import FeedEntry

__all__ = ["ParsedFeed", "feed_digest", "make_entry", "parse_feed", "parse_w3c_datetime"]

log = logging.getLogger(__name__)

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_HTML_SNIFF = re.compile(rb"<!doctype\s+html|<html[\s>]", re.IGNORECASE)
_JSONFEED_VERSION = "https://jsonfeed.org/version/"


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    entries: tuple[FeedEntry, ...]
    warning: str | None


def parse_feed(content: bytes, *, url: str, headers: Mapping[str, str] | None = None) -> ParsedFeed:
    """Read a fetched feed document.

    ``headers`` are the HTTP response headers: their Content-Type charset overrides the
    document's own declaration, as RFC 3023 says, and their Content-Location (default:
    ``url``) is the base for relative links inside the feed. Raises :class:`FeedError`
    when the bytes hold nothing usable; a well-formed feed without entries is not an error.
    """
    if not content.strip():
        raise FeedError(url, "empty body")
    if _looks_like_json(content):
        return _parse_json_feed(content, url)
    return _parse_xml_feed(content, url, _response_headers(url, headers))


def feed_digest(content: bytes, *, url: str, headers: Mapping[str, str] | None = None) -> str:
    """What :func:`parse_feed` reads of the entries, as a digest: equal digests parse to equal
    entries, so a poll whose digest did not change need not parse at all.

    Besides the bytes, the URL and the headers parse_feed looks at (the charset and the base
    for relative links) go in, so the same bytes under a new charset are parsed again. Of an
    XML feed, the text between the tags outside its entries is left out: a feed regenerated
    with only a new ``lastBuildDate`` (the usual reason a big feed's bytes change when
    nothing was published) then costs no parse. The tags themselves stay in, so a namespace,
    an ``xml:base`` or a DOCTYPE that changes what the entries mean is still seen.
    """
    digest = hashlib.sha256()
    merged = _response_headers(url, headers)
    for part in (url, merged.get("content-type", ""), merged.get("content-location", "")):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(content if _looks_like_json(content) else _entry_markup(content))
    return digest.hexdigest()


_ENTRY_START = re.compile(rb"<(?:[\w.-]+:)?(?:item|entry)[\s/>]")
_ENTRY_END = re.compile(rb"</(?:[\w.-]+:)?(?:item|entry)\s*>")
_TEXT_BETWEEN_TAGS = re.compile(rb">[^<]*<")


def _entry_markup(content: bytes) -> bytes:
    """The entries byte for byte, and only the markup of what surrounds them (the whole
    document when no entry is found, e.g. UTF-16, whose tags are not ASCII bytes)."""
    first = _ENTRY_START.search(content)
    ends = _ENTRY_END.finditer(content, first.start() if first else len(content))
    last = deque(ends, maxlen=1)  # the last end tag, in one pass without keeping the others
    if first is None or not last:
        return content
    head, entries, tail = (
        content[: first.start()],
        content[first.start() : last[0].end()],
        content[last[0].end() :],
    )
    return _TEXT_BETWEEN_TAGS.sub(b"><", head) + entries + _TEXT_BETWEEN_TAGS.sub(b"><", tail)


# --- XML feeds (feedparser) ------------------------------------------------------------------


def _response_headers(url: str, headers: Mapping[str, str] | None) -> dict[str, str]:
    merged = {name.lower(): value for name, value in (headers or {}).items()}
    # Without any headers feedparser trusts the document's encoding declaration; adding a
    # lone Content-Location would make it apply HTTP rules (no Content-Type -> latin-1).
    if merged:
        try:
            merged["content-location"] = urljoin(url, merged.get("content-location", url))
        except ValueError:  # an unparseable Content-Location is no base at all
            merged["content-location"] = url
    return merged


def _parse_xml_feed(content: bytes, url: str, headers: dict[str, str]) -> ParsedFeed:
    try:
        document, parse_headers, note = prepare_document(content, headers)
        parsed = feedparser.parse(io.BytesIO(document), response_headers=parse_headers)
    except Exception as exc:  # feedparser has crashed on odd input before; never let it out
        log.debug("feedparser crashed on %s", url, exc_info=True)
        raise FeedError(url, f"parser failed: {type(exc).__name__}: {exc}") from exc
    problem = _bozo_reason(parsed, document) if parsed.get("bozo") else None
    if problem and note:
        problem = f"{problem}; {note}"  # why a declared entity came out "undefined"
    version = parsed.get("version") or ""
    raw_entries = parsed.get("entries") or []
    if not raw_entries:
        if not version and (_HTML_SNIFF.search(content[:2048]) or _is_html_type(headers)):
            raise FeedError(url, "got an HTML page, not a feed")
        if problem:
            raise FeedError(url, problem)
        if not version:
            raise FeedError(url, "no RSS, Atom or JSON Feed found")
    entries = _unique(_xml_entry(raw, url) for raw in raw_entries)
    title = _text_of(parsed.get("feed", {}), "title")
    return ParsedFeed(title=title, entries=entries, warning=problem)


def _xml_entry(raw: Mapping[str, Any], url: str) -> FeedEntry | None:
    candidates = [c.get("value") for c in raw.get("content") or [] if isinstance(c, Mapping)]
    candidates.append(raw.get("summary"))
    content = max((c for c in candidates if isinstance(c, str)), key=len, default="")
    published = raw.get("published_parsed") or raw.get("updated_parsed")
    link = raw.get("link")
    if raw.get("guidislink") and not raw.get("links") and not _absolute_http(link, ""):
        # feedparser took a "permalink" guid as the link; "12345" is no URL, whatever the
        # publisher claimed, and resolving it against the feed URL would invent one.
        link = None
    return _make_entry(
        guid=raw.get("id"),
        link=link,
        title=_text_of(raw, "title"),
        content_html=content,
        published=_from_struct_time(published),
        base=url,
    )


def _text_of(item: Mapping[str, Any], field: str) -> str:
    """A title as plain text: HTML-typed titles lose their markup and entities."""
    value = item.get(field)
    if not isinstance(value, str):
        return ""
    detail = item.get(f"{field}_detail")
    kind = detail.get("type") if isinstance(detail, Mapping) else None
    if kind in _HTML_TYPES:
        value = _strip_tags(value)
    return " ".join(value.split())


def _is_html_type(headers: Mapping[str, str]) -> bool:
    return headers.get("content-type", "").split(";")[0].strip().lower() in _HTML_TYPES


def _bozo_reason(parsed: Mapping[str, Any], content: bytes) -> str:
    exc = parsed.get("bozo_exception")
    if isinstance(exc, xml.sax.SAXParseException):
        # feedparser puts a declaration line of its own in front unless the document starts
        # with one (checked on the raw bytes, so UTF-16/32 documents may be one line off).
        shift = 0 if content.removeprefix(b"\xef\xbb\xbf").startswith(b"<?xml") else 1
        line = max(1, (exc.getLineNumber() or 1) - shift)
        where = f"line {line}, column {exc.getColumnNumber()}"
        return f"not well-formed XML ({where}: {exc.getMessage()})"
    if isinstance(exc, Exception):
        return f"{type(exc).__name__}: {exc}"
    return "feedparser flagged the document as malformed"


def _from_struct_time(value: Any) -> datetime | None:
    # feedparser normalises every date it understands to a UTC struct_time.
    if value is None:
        return None
    try:
        year, month, day, hour, minute, second = tuple(value)[:6]
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _strip_tags(markup: str) -> str:
    collector = _TextCollector()
    collector.feed(markup)
    collector.close()
    return "".join(collector.parts)


# --- JSON Feed -------------------------------------------------------------------------------


def _looks_like_json(content: bytes) -> bool:
    return content.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] == b"{"


def _parse_json_feed(content: bytes, url: str) -> ParsedFeed:
    try:
        document = json.loads(content)
    except (ValueError, RecursionError) as exc:
        raise FeedError(url, f"invalid JSON: {exc}") from None
    version = document.get("version") if isinstance(document, dict) else None
    if not (isinstance(version, str) and version.startswith(_JSONFEED_VERSION)):
        raise FeedError(url, "a JSON document, but not a JSON Feed")
    items = document.get("items")
    if not isinstance(items, list):
        raise FeedError(url, "JSON Feed without an items list")
    entries = _unique(_json_entry(item, url) for item in items if isinstance(item, dict))
    return ParsedFeed(title=_json_str(document.get("title")) or "", entries=entries, warning=None)


def _json_entry(item: Mapping[str, Any], url: str) -> FeedEntry | None:
    ident = item.get("id")
    # Version 1 allowed numeric ids; 1.1 says strings. Accept both, never booleans.
    guid = str(ident) if isinstance(ident, int | float) and not isinstance(ident, bool) else ident
    content = next(
        (v for k in ("content_html", "content_text", "summary") if (v := _json_str(item.get(k)))),
        "",
    )
    return _make_entry(
        guid=guid,
        link=_json_str(item.get("url")) or _json_str(item.get("external_url")),
        title=" ".join((_json_str(item.get("title")) or "").split()),
        content_html=content,
        published=_from_rfc3339(item.get("date_published") or item.get("date_modified")),
        base=url,
    )


def _json_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _from_rfc3339(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- shared ----------------------------------------------------------------------------------


def _make_entry(
    *,
    guid: object,
    link: object,
    title: str,
    content_html: str,
    published: datetime | None,
    base: str,
) -> FeedEntry | None:
    guid = guid.strip() if isinstance(guid, str) else None
    absolute = _absolute_http(link, base)
    if absolute is not None and not userinfo_allowed(absolute, base):
        absolute = without_userinfo(absolute)
    canonical = _safe_canonical(absolute)
    key = guid or canonical
    if not key:
        return None
    return FeedEntry(
        key=key,
        guid=guid or None,
        link=absolute,
        canonical_url=canonical,
        title=title,
        content_html=content_html,
        published=published,
    )


def _absolute_http(link: object, base: str) -> str | None:
    """The link resolved against the feed URL, if it is something we could fetch."""
    if not isinstance(link, str) or not link.strip():
        return None
    try:
        absolute = urljoin(base, link.strip())
        scheme = urlsplit(absolute).scheme.lower()
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    return absolute if scheme in ("http", "https") else None


def _safe_canonical(link: str | None) -> str | None:
    if link is None:
        return None
    try:
        return canonical_url(link)
    except ValueError:
        return None


def _unique(entries: Iterable[FeedEntry | None]) -> tuple[FeedEntry, ...]:
    """Entries with an identity, the first occurrence of each key kept."""
    kept: dict[str, FeedEntry] = {}
    for entry in entries:
        if entry is not None and entry.key not in kept:
            kept[entry.key] = entry
    return tuple(kept.values())


# For the other sources of entries (news sitemaps): one identity rule, one date reader.
make_entry = _make_entry
parse_w3c_datetime = _from_rfc3339
