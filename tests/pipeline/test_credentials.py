"""Credentials in article links: never stored, never logged, never sent to a host the user
did not give them for.

A publisher's feed (or an attacker's) may carry links like ``http://user:pass@host/story``.
Kept, the password would sit in the database, in every log line naming the article, and
httpx would send it as Basic auth to that host. Only a feed whose own URL, written by the
user, carries credentials may hand them on to links on its own host.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import pytest
from test_hostile import STORY, Item, database_text, make_config, one_pass, page_html, rss

from support.server import LoopbackServer, Reply
from watcher.config.models import Config
from watcher.errors import FetchError, redact_credentials
from watcher.pipeline.feeds import parse_feed
from watcher.pipeline.urls import userinfo_allowed, without_userinfo
from watcher.storage.store import Store
from watcher.tasks import CheckOutcome, check_article, open_context

SECRET = "s3cr3t-pw"


def _with_userinfo(url: str, userinfo: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"{userinfo}@{parts.netloc}").geturl()


def _serve_story(loopback: LoopbackServer, path: str) -> None:
    loopback.route(path, Reply(200, page_html("Port strike ends", STORY)))


def test_a_link_with_credentials_is_stored_and_fetched_without_them(
    loopback: LoopbackServer, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    _serve_story(loopback, "/story.html")
    link = _with_userinfo(loopback.url("/story.html"), f"reader:{SECRET}")
    feed = rss([Item("strike-1", "Port strike ends", link, STORY[0])])
    loopback.route("/feed.xml", Reply(200, feed, {"Content-Type": "application/rss+xml"}))
    config = make_config({"news": loopback.url("/feed.xml")})
    with caplog.at_level(logging.DEBUG):
        ran = one_pass(config, store)
    assert ran.summary.checks[0].status == "new"
    article = store.find_article("strike-1")
    assert article is not None
    assert article.url == article.link == loopback.url("/story.html")
    assert store.versions(article.id)[-1].source == "page"
    # Nothing anywhere in the database, nothing in the logs, no Basic auth sent.
    assert not [cell for cell in database_text(store) if SECRET in cell[2]]
    assert SECRET not in caplog.text
    (request,) = loopback.requests_to("/story.html")
    assert "authorization" not in {name.lower() for name in request.headers}


def test_a_feed_with_credentials_hands_them_to_its_own_links_only(
    loopback: LoopbackServer, store: Store
) -> None:
    _serve_story(loopback, "/own.html")
    feed = rss(
        [
            Item("own-1", "Port strike ends", "/own.html", STORY[0]),
            Item("other-1", "Elsewhere", f"http://x:{SECRET}@elsewhere.test/a", STORY[1]),
        ]
    )
    loopback.route("/private.xml", Reply(200, feed, {"Content-Type": "application/rss+xml"}))
    feed_url = _with_userinfo(loopback.url("/private.xml"), f"member:{SECRET}")
    parsed = parse_feed(feed.encode(), url=feed_url)
    own, other = parsed.entries
    # Its own host's link keeps what the user wrote in the feed URL (to be fetched with
    # it); the identity never does; another host's link loses it.
    assert own.link == _with_userinfo(loopback.url("/own.html"), f"member:{SECRET}")
    assert own.canonical_url == loopback.url("/own.html")
    assert other.link == "http://elsewhere.test/a"
    ran = one_pass(make_config({"members": feed_url}), store)
    assert ran.poll("members").status == "ok"
    (request,) = loopback.requests_to("/own.html")
    assert request.headers.get("Authorization", "").startswith("Basic ")


def test_a_stored_link_with_credentials_is_refused_and_the_error_masked(
    loopback: LoopbackServer, store: Store
) -> None:
    """Rows written before this rule may still hold such a link: it is not fetched."""
    _serve_story(loopback, "/old.html")
    feed = rss([Item("old-1", "Port strike ends", loopback.url("/old.html"), STORY[0])])
    loopback.route("/feed.xml", Reply(200, feed, {"Content-Type": "application/rss+xml"}))
    config = make_config({"news": loopback.url("/feed.xml")})
    one_pass(config, store)
    article = store.find_article("old-1")
    assert article is not None
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE article SET link = :link WHERE id = :id"
            if store.engine.dialect.name == "sqlite"
            else "UPDATE article SET link = %(link)s WHERE id = %(id)s",
            {"link": _with_userinfo(loopback.url("/old.html"), f"u:{SECRET}"), "id": article.id},
        )
    check = asyncio.run(_check_only(config, store, article.id))
    assert check.status == "failed" and "credentials" in (check.error or "")
    assert SECRET not in (check.error or "")
    assert len(loopback.requests_to("/old.html")) == 1  # only the first pass fetched it


async def _check_only(config: Config, store: Store, article_id: int) -> CheckOutcome:
    # A check without a poll first: a poll would overwrite the link with the feed's own.
    async with open_context(config, store) as ctx:
        return await check_article(ctx, article_id)


@pytest.mark.parametrize(
    ("link", "feed_url", "allowed"),
    [
        ("https://news.test/a", "https://news.test/feed", True),
        ("https://u:p@news.test/a", "https://news.test/feed", False),
        ("https://u:p@news.test/a", "https://u:p@news.test/feed", True),
        ("https://u@news.test/a", "https://u:p@news.test/feed", True),
        ("https://u:p@other.test/a", "https://u:p@news.test/feed", False),
        ("https://u:p@[::1/a", "https://u:p@news.test/feed", False),
    ],
)
def test_userinfo_allowed(link: str, feed_url: str, allowed: bool) -> None:
    assert userinfo_allowed(link, feed_url) is allowed


def test_redaction_of_messages() -> None:
    assert without_userinfo("https://a:b@x.test:8080/p?q#f") == "https://x.test:8080/p?q#f"
    assert redact_credentials("GET http://a:b@x.test/ and ftp://c:d@y/") == (
        "GET http://a:***@x.test/ and ftp://c:***@y/"
    )
    error = FetchError(f"http://me:{SECRET}@x.test/", "connection refused")
    assert SECRET not in str(error) and error.url.endswith("@x.test/")
