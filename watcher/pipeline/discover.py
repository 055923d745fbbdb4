"""Feed discovery for ``watcher discover URL``: which feeds does a site offer?

The page's ``<link rel="alternate">`` elements of feed types come first (what browsers and
feed readers use), then a few paths sites conventionally publish feeds at. Each candidate is
fetched and parsed like a polled feed, so only feeds that work are listed, with their title
and entry count. Every request goes through the caller's fetcher and URL check: the same
limits and SSRF guard as polling.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from watcher.errors import FeedError, FetchError
from watcher.pipeline.feeds import parse_feed
from watcher.pipeline.fetch import Fetcher, URLCheck

__all__ = ["CONVENTIONAL_PATHS", "FoundFeed", "discover_feeds", "feed_links"]

log = logging.getLogger(__name__)

FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/feed+json",
        "application/json",  # JSON Feed before it had its own type
    }
)
CONVENTIONAL_PATHS = ("/feed", "/rss", "/rss.xml", "/feed.xml", "/atom.xml", "/index.xml",
                      "/feed.json")
# Links on a page worth trying: a page listing hundreds of category feeds gets its first ones.
MAX_LINKS = 20


@dataclass(frozen=True)
class FoundFeed:
    url: str  # where it was found to work (after redirects)
    title: str
    entries: int
    via: str  # link | path | page (the URL given was a feed itself)


class _LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "link":
            return
        values = {name.lower(): (value or "").strip() for name, value in attrs}
        rels = values.get("rel", "").lower().split()
        kind = values.get("type", "").lower().split(";")[0].strip()
        if "alternate" in rels and kind in FEED_TYPES and values.get("href"):
            self.links.append((values["href"], values.get("title", "")))


def feed_links(html: bytes, base: str) -> list[tuple[str, str]]:
    """``(absolute URL, title)`` of the page's feed ``<link rel="alternate">``s, in order."""
    collector = _LinkCollector()
    collector.feed(html.decode("utf-8", errors="replace"))
    collector.close()
    found: dict[str, str] = {}
    for href, title in collector.links:
        absolute = urljoin(base, href)
        if urlsplit(absolute).scheme in ("http", "https"):
            found.setdefault(absolute, title)
    return list(found.items())[:MAX_LINKS]


async def discover_feeds(fetcher: Fetcher, url: str, check: URLCheck | None) -> list[FoundFeed]:
    """The working feeds of the site at ``url``; FetchError if its page cannot be fetched."""
    page = await fetcher.fetch(url, check_url=check)
    try:
        itself = parse_feed(page.content, url=page.final_url, headers=page.headers)
    except FeedError:
        itself = None
    if itself is not None and itself.entries:
        return [FoundFeed(page.final_url, itself.title, len(itself.entries), "page")]
    candidates = [(link, title, "link") for link, title in feed_links(page.content, page.final_url)]
    candidates += [(urljoin(page.final_url, path), "", "path") for path in CONVENTIONAL_PATHS]
    found: dict[str, FoundFeed] = {}
    for candidate, title, via in candidates:
        feed = await _try(fetcher, candidate, title, via, check)
        if feed is not None and feed.url not in found:
            found[feed.url] = feed
    return list(found.values())


async def _try(
    fetcher: Fetcher, url: str, title: str, via: str, check: URLCheck | None
) -> FoundFeed | None:
    try:
        result = await fetcher.fetch(url, check_url=check)
        parsed = parse_feed(result.content, url=result.final_url, headers=result.headers)
    except (FetchError, FeedError) as exc:
        log.debug("discover: %s is no feed: %s", url, exc)
        return None
    if not parsed.entries and not parsed.title:
        return None
    return FoundFeed(result.final_url, parsed.title or title, len(parsed.entries), via)
