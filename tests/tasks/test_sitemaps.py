"""News sitemaps as feeds, through real polls of a loopback server: urlsets with
``news:news``, sitemap indexes, gzip files, conditional GET, size caps."""

from __future__ import annotations

import asyncio
import gzip
from datetime import UTC, datetime

import pytest

from support.clock import Clock
from support.server import LoopbackServer, Reply, conditional
from watcher.config.loading import parse_config
from watcher.config.models import Config
from watcher.errors import ConfigError, FeedError
from watcher.pipeline.sitemaps import MAX_CHILDREN, parse_sitemap
from watcher.storage.store import Store
from watcher.tasks import PollOutcome, open_context, poll_feed

NEWS_NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" ' \
    'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'


def news_urlset(base: str, *slugs: str) -> str:
    items = "".join(
        f"""<url><loc>{base}/{slug}</loc><news:news>
        <news:publication><news:name>Desk</news:name><news:language>en</news:language>
        </news:publication><news:publication_date>2024-05-0{i + 1}T10:00:00+02:00
        </news:publication_date><news:title>Title of {slug} &amp; more</news:title>
        </news:news></url>"""
        for i, slug in enumerate(slugs)
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset {NEWS_NS}>{items}</urlset>'


def sitemap_config(url: str, max_bytes: str = "10MB") -> Config:
    return parse_config(
        f"""
        defaults: {{interval: 1m, fetch_article: false}}
        fetch: {{max_bytes: {max_bytes}}}
        feeds: [{{name: desk, sitemap: "{url}"}}]
        """
    )


def poll(config: Config, store: Store) -> PollOutcome:
    async def once() -> PollOutcome:
        async with open_context(config, store, Clock()) as ctx:
            return await poll_feed(ctx, "desk")

    return asyncio.run(once())


def test_news_urlset_entries_become_articles_with_title_and_date(
    loopback: LoopbackServer, store: Store
) -> None:
    base = "https://news.example.org"
    loopback.route(
        "/news.xml", conditional(news_urlset(base, "a", "b"), "application/xml")
    )
    config = sitemap_config(loopback.url("/news.xml"))
    first = poll(config, store)
    assert (first.status, first.entries, first.new_articles) == ("ok", 2, 2)
    article = store.find_article(f"{base}/a")
    assert article is not None and article.entry_title == "Title of a & more"
    # The second poll is a conditional GET answered 304.
    assert poll(config, store).status == "not_modified"
    assert "if-none-match" in loopback.requests_to("/news.xml")[-1].headers
    # A new <loc> is a new article; the old ones are not new again.
    loopback.route(
        "/news.xml", conditional(news_urlset(base, "a", "b", "c"), "application/xml")
    )
    third = poll(config, store)
    assert (third.entries, third.new_articles) == (3, 1)


def test_sitemap_index_children_gzip_and_bounds(loopback: LoopbackServer, store: Store) -> None:
    base = "https://news.example.org"
    loopback.route(
        "/news-1.xml.gz",
        Reply(body=gzip.compress(news_urlset(base, "one", "two").encode()),
              headers={"Content-Type": "application/x-gzip"}),
    )
    loopback.route("/news-2.xml", Reply(body=news_urlset(base, "two", "three"),
                                        headers={"Content-Type": "text/xml"}))
    old = "".join(
        f"<sitemap><loc>{loopback.url(f'/old-{i}.xml')}</loc><lastmod>2020-01-01</lastmod>"
        "</sitemap>"
        for i in range(MAX_CHILDREN + 5)
    )
    index = f"""<?xml version="1.0"?>
    <sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <sitemap><loc>/news-1.xml.gz</loc><lastmod>2024-05-02</lastmod></sitemap>
      <sitemap><loc>{loopback.url("/news-2.xml")}</loc><lastmod>2024-05-03</lastmod></sitemap>
      <sitemap><loc>http://elsewhere.example/private.xml</loc></sitemap>
      {old}
    </sitemapindex>"""
    loopback.route("/index.xml", conditional(index, "application/xml"))
    config = sitemap_config(loopback.url("/index.xml"))
    outcome = poll(config, store)
    assert (outcome.status, outcome.entries, outcome.new_articles) == ("ok", 3, 3), outcome
    # Only the newest children were read (the old ones 404: a warning, not a failure),
    # and never one on another host.
    fetched_old = sum(len(loopback.requests_to(f"/old-{i}.xml")) for i in range(20))
    assert fetched_old == MAX_CHILDREN - 2
    assert outcome.warning is not None and "404" in outcome.warning
    # An index is fetched whole every time: its children change while it stays the same.
    again = poll(config, store)
    assert again.status == "ok" and again.new_articles == 0
    assert "if-none-match" not in loopback.requests_to("/index.xml")[-1].headers
    assert len(loopback.requests_to("/news-2.xml")) == 2


def test_oversize_sitemaps_fail_the_poll(loopback: LoopbackServer, store: Store) -> None:
    base = "https://news.example.org"
    big = news_urlset(base, *(f"story-{i}" for i in range(400)))
    assert len(big) > 100_000
    loopback.route("/big.xml", Reply(body=big, headers={"Content-Type": "application/xml"}))
    outcome = poll(sitemap_config(loopback.url("/big.xml"), "100KB"), store)
    assert outcome.status == "failed" and "exceeds" in (outcome.error or "")
    # A gzip file that unpacks past the cap is refused too (a gzip bomb).
    bomb = gzip.compress(b"<urlset>" + b" " * 5_000_000 + b"</urlset>")
    loopback.route("/bomb.xml.gz", Reply(body=bomb, headers={"Content-Type": "application/gzip"}))
    outcome = poll(sitemap_config(loopback.url("/bomb.xml.gz"), "100KB"), store)
    assert outcome.status == "failed" and "exceeds" in (outcome.error or "")


def test_parse_refuses_entities_and_non_sitemaps() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY a "aaaa">]><urlset>&a;</urlset>'
    with pytest.raises(FeedError, match="not a readable sitemap"):
        parse_sitemap(bomb, url="https://x.example/s.xml", max_bytes=1000)
    with pytest.raises(FeedError, match="root element is <rss>"):
        parse_sitemap(b"<rss/>", url="https://x.example/s.xml", max_bytes=1000)


def test_publication_date_and_plain_sitemaps() -> None:
    plain = b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
    <url><loc>https://x.example/a?utm_source=x</loc><lastmod>2024-01-02</lastmod></url>
    <url><loc>https://x.example/a</loc></url><url><loc>javascript:alert(1)</loc></url></urlset>"""
    sitemap = parse_sitemap(plain, url="https://x.example/s.xml", max_bytes=10_000)
    assert [e.canonical_url for e in sitemap.entries] == ["https://x.example/a"]
    assert sitemap.entries[0].published == datetime(2024, 1, 2, tzinfo=UTC)
    news = parse_sitemap(
        news_urlset("https://x.example", "n").encode(), url="https://x.example/", max_bytes=10**6
    )
    assert news.entries[0].published == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def test_sitemap_feed_config() -> None:
    config = parse_config('feeds: [{name: s, sitemap: " https://x.example/news.xml "}]')
    assert config.feeds[0].url == config.feeds[0].sitemap == "https://x.example/news.xml"
    with pytest.raises(ConfigError, match="not both"):
        parse_config('feeds: [{name: s, sitemap: "https://x/", url: "https://x/"}]')
    with pytest.raises(ConfigError, match="needs http"):
        parse_config('feeds: [{name: s, sitemap: "ftp://x/"}]')
