"""Feed stage: fetched bytes -> feed entries with a stable identity.

RSS 0.9x/1.0/2.0 and Atom go through feedparser; JSON Feed is read here, because
feedparser 6.0 does not understand it. feedparser is always handed a byte stream, never a
string: given a string (or bytes naming an existing file) it would fetch a URL or open a
local file by itself. Nor is it handed every document as fetched (see :func:`_prepare`):
UTF-8 with a few invalid bytes is repaired first, and a document that declares entities gets
a prolog of our own, as entity expansion is the one way a small feed can grow huge.

An entry's identity (:attr:`FeedEntry.key`) is its guid/id when it has one, else its
canonical URL, so a publisher appending ``?utm_source=rss`` does not make a new article.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import logging
import re
import xml.sax
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import feedparser
from feedparser.encodings import convert_to_utf8

from watcher.errors import FeedError
from watcher.extract import mostly_utf8

__all__ = ["FeedEntry", "ParsedFeed", "canonical_url", "feed_digest", "parse_feed"]

log = logging.getLogger(__name__)

# Query parameters that only tell the publisher where a click came from. Compared
# case-insensitively; any name starting with "utm_" is one as well.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid",
        "twclid", "ttclid", "li_fat_id", "igshid", "mc_cid", "mc_eid", "_ga", "_gl",
        "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "rb_clickid",
        "ref", "ref_src", "ref_url", "cmpid", "icid", "ocid", "smid", "spm", "wt_mc",
    }
)  # fmt: skip
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_HTML_SNIFF = re.compile(rb"<!doctype\s+html|<html[\s>]", re.IGNORECASE)
_JSONFEED_VERSION = "https://jsonfeed.org/version/"
# Characters the kept entity declarations of one document may add, all references together.
ENTITY_BUDGET = 1_000_000


@dataclass(frozen=True)
class FeedEntry:
    """One item of a feed, as published (the article page is fetched later)."""

    key: str
    guid: str | None
    link: str | None
    canonical_url: str | None
    title: str
    content_html: str
    published: datetime | None


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
    """What :func:`parse_feed` reads, as a digest: equal digests parse to equal feeds.

    Besides the bytes, the URL and the headers parse_feed looks at (the charset and the base
    for relative links) go in, so the same bytes under a new charset are parsed again.
    """
    digest = hashlib.sha256()
    merged = _response_headers(url, headers)
    for part in (url, merged.get("content-type", ""), merged.get("content-location", "")):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(content)
    return digest.hexdigest()


def canonical_url(url: str, base: str | None = None) -> str:
    """The URL two links to the same article share (raises ValueError if unparseable).

    Lower-cases scheme and host, drops the default port, the fragment and tracking
    parameters; keeps the other parameters byte for byte and in order. Idempotent.
    """
    parts = urlsplit(urljoin(base, url) if base else url)
    scheme = parts.scheme.lower()
    netloc = _canonical_netloc(parts.netloc, scheme)
    path = parts.path or ("/" if netloc else "")
    if not netloc and path.startswith("//"):
        # "http:////x" has no host; left as is it would come back as host "x".
        path = "/" + path.lstrip("/")
    kept = [p for p in parts.query.split("&") if p and not _is_tracking(p)]
    return urlunsplit((scheme, netloc, path, "&".join(kept), ""))


def _canonical_netloc(netloc: str, scheme: str) -> str:
    userinfo, at, hostport = netloc.rpartition("@")
    host, colon, port = hostport.rpartition(":")
    # "[::1]" has colons of its own: only a colon after the closing bracket starts a port.
    if not colon or "]" in port:
        host, port = hostport, ""
    if port in ("", _DEFAULT_PORTS.get(scheme)):
        hostport = host
    return f"{userinfo}{at}{hostport.lower()}"


def _is_tracking(param: str) -> bool:
    name = param.partition("=")[0].lower()
    return name.startswith("utm_") or name in TRACKING_PARAMS


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
        document, parse_headers, note = _prepare(content, headers)
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


# --- declared entities ------------------------------------------------------------------------
#
# A DOCTYPE's internal subset may declare entities, and two parsers would expand them. expat
# (feedparser's strict pass) only stops at 100 times the input once past 8 MiB, so a 10 MB
# feed could grow to 1 GB; feedparser's loose pass, which runs whenever expat gives up, expands
# every entity bound to plain text with no limit at all (100 KB of text referenced 2,000
# times: 400 MB of text and 13 s). feedparser also finds the DOCTYPE with a regular
# expression that a comment holding "<x" defeats, handing expat the whole DTD. So a document
# that declares any entity gets a prolog of our own: the XML declaration and a DOCTYPE with
# only the entities bound to plain text or to one character reference, and those only while
# all their uses add at most ENTITY_BUDGET characters. External (SYSTEM/PUBLIC), parameter
# and nested entities are dropped, and their references stay literal text. This runs on the
# document as feedparser will decode it, so a UTF-16 or UTF-7 label hides nothing.

_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
_KEPT_ENTITY = re.compile(
    rb"""<!ENTITY\s+(\w+)\s+(["'])([^"'&%<>]*|&#(?:[0-9]{1,7}|x[0-9a-fA-F]{1,6});)\2\s*>"""
)
_ELEMENT_START = re.compile(rb"<\w")  # what feedparser takes for the end of the prolog
_DECLARATION_TOKEN = re.compile(rb"""["'\[\]>]|<!--|<\?""")
_CLOSERS = {b'"': b'"', b"'": b"'", b"<!--": b"-->", b"<?": b"?>"}
# A real prolog is a few hundred bytes: scanning and collecting stop here (the rest of an
# overlong prolog is dropped with it).
_PROLOG_LIMIT = 64 * 1024


def _prepare(content: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str], str | None]:
    """The document to hand feedparser, its headers, and a note if declarations were dropped.

    The bytes are left alone unless (1) they are UTF-8 with a few invalid bytes, which
    become U+FFFD: feedparser would otherwise fall back to windows-1252 or ISO-8859-2 for the
    whole document, turning every accented word of every entry into mojibake; or (2) the
    document, decoded as feedparser will decode it, contains "<!ENTITY" anywhere: then it is
    returned as UTF-8, labelled so, with a prolog of our own in front of its first element.
    """
    probe: dict[str, Any] = {}
    decoded: bytes = convert_to_utf8(headers, content, probe)
    fell_back = isinstance(probe.get("bozo_exception"), feedparser.CharacterEncodingOverride)
    if fell_back and mostly_utf8(content):
        repaired = content.decode("utf-8", errors="replace").encode("utf-8")
        check: dict[str, Any] = {}
        redecoded: bytes = convert_to_utf8(headers, repaired, check)
        # Only if feedparser now reads it as UTF-8 (a UTF-16 label, say, would not).
        if _codec_name(check.get("encoding")) == "utf-8":
            content, decoded = repaired, redecoded
    if not _ENTITY_DECLARATION.search(decoded):
        return content, headers, None
    return _defuse_entities(decoded, headers)


def _codec_name(label: object) -> str | None:
    try:
        return codecs.lookup(label).name if isinstance(label, str) and label else None
    except LookupError:
        return None


def _defuse_entities(
    decoded: bytes, headers: dict[str, str]
) -> tuple[bytes, dict[str, str], str | None]:
    """A UTF-8 document whose prolog declares only entities that cannot grow or reach out."""
    start = _prolog_end(decoded)
    prolog, body = decoded[:start], decoded[start:]
    kept: dict[bytes, bytes] = {}
    for match in _KEPT_ENTITY.finditer(prolog, 0, _PROLOG_LIMIT):
        kept.setdefault(match.group(1), match.group(3))  # XML: the first declaration binds
    if _growth(kept, body) > ENTITY_BUDGET:
        kept = {name: value for name, value in kept.items() if value.startswith(b"&#")}
    declared = len(_ENTITY_DECLARATION.findall(prolog, 0, _PROLOG_LIMIT))
    note = None
    if declared > len(kept) or len(prolog) > _PROLOG_LIMIT:
        note = "ignored the DOCTYPE's external, parameter, nested or oversized entity declarations"
    entities = b"".join(b'<!ENTITY %s "%s">\n' % item for item in kept.items())
    doctype = b"<!DOCTYPE feed [\n" + entities + b"]>\n" if entities else b""
    # Valid UTF-8 whatever feedparser's decoding fell back to, so it reads it back unchanged.
    text = body.decode("utf-8", "replace").encode("utf-8")
    document = b'<?xml version="1.0" encoding="utf-8"?>\n' + doctype + text
    relabelled = {**headers, "content-type": "application/xml; charset=utf-8"} if headers else {}
    return document, relabelled, note


def _growth(entities: Mapping[bytes, bytes], body: bytes) -> int:
    """Characters that expanding the body's references would add (counted up to the budget).

    Only references longer than what they stand for are looked for, so the count takes at
    most ENTITY_BUDGET steps however many references the body holds.
    """
    adds = {
        b"&%s;" % name: len(value) - len(name) - 2
        for name, value in entities.items()
        if not value.startswith(b"&#") and len(value) > len(name) + 2
    }
    if not adds:
        return 0
    total = 0
    for match in re.finditer(b"|".join(map(re.escape, adds)), body):
        total += adds[match.group()]
        if total > ENTITY_BUDGET:
            break
    return total


def _prolog_end(data: bytes) -> int:
    """Where the first element starts, skipping comments, processing instructions and
    declarations (a DOCTYPE with its quoted strings and internal subset) as XML reads them.

    Always the position of a "<" + word character (or the end), so whatever follows the new
    prolog starts with an element for expat and for feedparser's own prolog regex alike.
    """
    pos = 0
    while pos < _PROLOG_LIMIT:
        pos = data.find(b"<", pos)
        if pos < 0:
            return len(data)
        if data.startswith((b"<!--", b"<?"), pos):
            opener = b"<!--" if data.startswith(b"<!--", pos) else b"<?"
            pos = _past(data, _CLOSERS[opener], pos + len(opener))
        elif data.startswith(b"<!", pos):
            pos = _declaration_end(data, pos + 2)
        elif _ELEMENT_START.match(data, pos):
            return pos
        else:
            pos += 1
    found = _ELEMENT_START.search(data, pos)
    return found.start() if found else len(data)


def _declaration_end(data: bytes, pos: int) -> int:
    depth = 0  # inside the internal subset's [ ... ]
    while pos < _PROLOG_LIMIT and (token := _DECLARATION_TOKEN.search(data, pos)):
        pos = token.end()
        mark = token.group()
        if mark in _CLOSERS:
            pos = _past(data, _CLOSERS[mark], pos)
        elif mark == b"[":
            depth += 1
        elif mark == b"]":
            depth = max(0, depth - 1)
        elif depth == 0:  # ">"
            return pos
    return pos if pos >= _PROLOG_LIMIT else len(data)


def _past(data: bytes, closer: bytes, pos: int) -> int:
    end = data.find(closer, pos)
    return len(data) if end < 0 else end + len(closer)


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
