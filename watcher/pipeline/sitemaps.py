"""News sitemaps as feeds: ``{name, sitemap: URL}``.

Many outlets publish a Google News sitemap (a ``<urlset>`` whose ``<url>`` entries carry
``<news:news>`` with a title and a publication date) or a sitemap index pointing at some,
and no useful RSS. Each ``<loc>`` is an entry, identified like a feed entry (its canonical
URL), so tracking, re-checks and "one story in two feeds is one article" work unchanged.

Bounded like everything fetched: the fetcher's caps apply to the sitemap and to each child
of an index (a ``.xml.gz`` file is unpacked under the same byte cap), an index is followed
one level deep, to at most :data:`MAX_CHILDREN` children on its own host, newest first. XML
is read with defusedxml: no DTD, no entity expansion.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from watcher.errors import FeedError, FetchError
from watcher.pipeline.encoding import decode_body
from watcher.pipeline.feeds import ParsedFeed, make_entry, parse_w3c_datetime
from watcher.pipeline.fetch import Fetcher, FetchResult
from watcher.records import FeedEntry

__all__ = ["MAX_CHILDREN", "Sitemap", "parse_sitemap", "read_sitemap"]

log = logging.getLogger(__name__)

# Children of a sitemap index fetched per poll (news sitemaps: the newest few hold the news).
MAX_CHILDREN = 10
_OLDEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Sitemap:
    """A parsed sitemap document: a urlset's entries, or an index's child sitemap URLs
    (newest ``lastmod`` first, at most MAX_CHILDREN, on the index's own host)."""

    entries: tuple[FeedEntry, ...] = ()
    children: tuple[str, ...] = ()
    skipped_children: int = 0


def parse_sitemap(content: bytes, *, url: str, max_bytes: int) -> Sitemap:
    """Read a sitemap (gzip-compressed or not); FeedError when it is not one."""
    if content[:2] == b"\x1f\x8b":  # a .xml.gz file served as such, not a Content-Encoding
        try:
            content = decode_body(url, "gzip", content, max_bytes)
        except FetchError as exc:
            raise FeedError(url, f"sitemap: {exc.reason}") from None
    try:
        root = fromstring(content, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as exc:
        raise FeedError(url, f"not a readable sitemap: {exc}") from None
    kind = _local(root.tag)
    if kind == "urlset":
        return Sitemap(entries=tuple(_entries(root, url)))
    if kind == "sitemapindex":
        return _index(root, url)
    raise FeedError(url, f"not a sitemap: the root element is <{kind}>")


def _entries(root: Element, base: str) -> Iterator[FeedEntry]:
    seen: set[str] = set()
    for item in _children(root, "url"):
        loc = _text(item, "loc")
        news = next(_children(item, "news"), None)
        title = _text(news, "title") if news is not None else ""
        published = parse_w3c_datetime(_text(news, "publication_date") if news else "")
        entry = make_entry(
            guid=None,
            link=loc,
            title=title,
            content_html="",
            published=published or parse_w3c_datetime(_text(item, "lastmod")),
            base=base,
        )
        if entry is not None and entry.key not in seen:
            seen.add(entry.key)
            yield entry


def _index(root: Element, base: str) -> Sitemap:
    host = urlsplit(base).hostname
    found: list[tuple[datetime, int, str]] = []
    foreign = 0
    for position, item in enumerate(_children(root, "sitemap")):
        loc = _text(item, "loc")
        if not loc:
            continue
        child = urljoin(base, loc)
        # The sitemaps protocol lets an index name only sitemaps of its own site; anything
        # else is a link to follow that nobody configured.
        if urlsplit(child).scheme not in ("http", "https") or urlsplit(child).hostname != host:
            foreign += 1
            continue
        stamp = parse_w3c_datetime(_text(item, "lastmod")) or _OLDEST
        found.append((stamp, -position, child))
    found.sort(reverse=True)
    kept = tuple(url for _, _, url in found[:MAX_CHILDREN])
    return Sitemap(children=kept, skipped_children=foreign + max(0, len(found) - MAX_CHILDREN))


async def read_sitemap(fetcher: Fetcher, result: FetchResult) -> tuple[ParsedFeed, bool]:
    """The entries of a fetched sitemap, fetching an index's children; and whether the
    response stands for them all (a plain urlset), so that its validators and digest may be
    kept. An index's children are fetched on every poll: the index often stays the same
    while its newest child changes."""
    limit = fetcher.limits.max_bytes
    sitemap = await asyncio.to_thread(
        parse_sitemap, result.content, url=result.url, max_bytes=limit
    )
    if not sitemap.children:
        if sitemap.skipped_children:
            raise FeedError(result.url, "sitemap index names no sitemap on its own host")
        return ParsedFeed(title="", entries=sitemap.entries, warning=None), True
    entries: dict[str, FeedEntry] = {}
    problems: list[str] = []
    for child in sitemap.children:
        try:
            fetched = await fetcher.fetch(child)
            part = await asyncio.to_thread(
                parse_sitemap, fetched.content, url=child, max_bytes=limit
            )
        except (FetchError, FeedError) as exc:
            problems.append(str(exc))
            continue
        if part.children:
            problems.append(f"{child}: a sitemap index inside an index is not followed")
        for entry in part.entries:
            entries.setdefault(entry.key, entry)
    if problems and len(problems) == len(sitemap.children):
        raise FeedError(result.url, "no child sitemap could be read: " + "; ".join(problems[:3]))
    warning = "; ".join(problems[:3]) or None
    if sitemap.skipped_children:
        log.info("sitemap %s: %d child sitemaps not read", result.url, sitemap.skipped_children)
    return ParsedFeed(title="", entries=tuple(entries.values()), warning=warning), False


def _local(tag: str) -> str:
    """``{namespace}name`` → ``name``: outlets get the namespaces wrong often enough."""
    return tag.rsplit("}", 1)[-1].lower()


def _children(element: Element, name: str) -> Iterator[Element]:
    return (child for child in element if _local(child.tag) == name)


def _text(element: Element | None, name: str) -> str:
    if element is None:
        return ""
    found = next(_children(element, name), None)
    return (found.text or "").strip() if found is not None else ""
