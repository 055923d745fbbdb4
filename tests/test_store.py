"""The store on SQLite and PostgreSQL: idempotence keys, identity, migrations, learning."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from watcher.errors import StoreError
from watcher.feeds import FeedEntry
from watcher.records import CheckRecord, NewAlert, NewVersion, PollRecord
from watcher.store import Store

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def entry(key: str, link: str | None = None, guid: str | None = None) -> FeedEntry:
    return FeedEntry(
        key=key,
        guid=guid,
        link=link,
        canonical_url=link,
        title=f"Title {key}",
        content_html="<p>text</p>",
        published=None,
    )


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url)
    opened.sync_feeds([("a", "http://a.example/feed"), ("b", "http://b.example/feed")])
    yield opened
    opened.close()


def version(text: str, digest: str) -> NewVersion:
    return NewVersion(title="T", text=text, content_hash=digest, source="page")


def test_one_article_in_two_feeds(store: Store) -> None:
    link = "http://news.example/story"
    assert store.add_entries("a", [entry("g1", link, "g1")], T0) == 1
    assert store.add_entries("b", [entry(link, link)], T0) == 0
    assert store.add_entries("b", [entry("g1", None, "g1")], T0) == 0  # same guid, no link
    article = store.find_article(link)
    assert article is not None and article.feeds == ("a", "b")
    assert store.counts()["articles"] == 1
    assert store.due_article_ids(T0) == [article.id]
    assert store.due_article_ids(T0, feeds=["b"]) == [article.id]


def test_version_and_alerts_are_stored_once(store: Store) -> None:
    store.add_entries("a", [entry("k", "http://news.example/k")], T0)
    (article_id,) = store.due_article_ids(T0)
    alert = NewAlert("r", "new", "a", ("truce",), {"added": ["x"]})
    check = CheckRecord(T0, T0 + timedelta(hours=1), version=version("one", "h1"), alerts=(alert,))
    first = store.record_check(article_id, check)
    again = store.record_check(article_id, check)  # a re-run after a crash
    assert first is not None and first.number == 1
    assert again is None
    assert store.counts()["versions"] == 1 and store.counts()["alerts"] == 1
    assert store.article(article_id).checks == 2
    (recorded,) = store.alerts()
    assert recorded.matched == ("truce",) and recorded.version == 1
    assert recorded.created_at == T0


def test_seen_again_marks_the_old_version(store: Store) -> None:
    store.add_entries("a", [entry("k", "http://news.example/k")], T0)
    (article_id,) = store.due_article_ids(T0)
    later = T0 + timedelta(hours=1)
    store.record_check(article_id, CheckRecord(T0, later, version=version("one", "h1")))
    store.record_check(article_id, CheckRecord(later, later, version=version("two", "h2")))
    store.record_check(article_id, CheckRecord(later, later, seen_again=1))
    assert store.article(article_id).current_version == 1
    first, second = store.versions(article_id)
    assert (first.times_seen, second.times_seen) == (2, 1)
    assert store.version_by_hash(article_id, "h2") == second


def test_failures_count_and_retirement(store: Store) -> None:
    store.add_entries("a", [entry("k", "http://news.example/k")], T0)
    (article_id,) = store.due_article_ids(T0)
    store.record_check(article_id, CheckRecord(T0, T0, error="boom"))
    store.record_check(article_id, CheckRecord(T0, T0, error="boom"))
    assert store.article(article_id).failures == 2
    store.record_check(article_id, CheckRecord(T0, None))
    state = store.article(article_id)
    assert state.failures == 0 and state.status == "retired"
    assert store.due_article_ids(T0 + timedelta(days=99), everything=True) == []


def test_furniture_needs_three_articles(store: Store) -> None:
    store.learn_site_lines("news.example", ["updated 0 minutes ago", "body line"])
    store.learn_site_lines("news.example", ["updated 0 minutes ago"])
    assert "updated 0 minutes ago" not in store.site_furniture("news.example")
    store.learn_site_lines("news.example", ["updated 0 minutes ago"])
    learned = store.site_furniture("news.example")
    assert "updated 0 minutes ago" in learned and "body line" not in learned
    assert "updated 0 minutes ago" not in store.site_furniture("other.example")


def test_changed_feed_url_forgets_cache_keys(store: Store) -> None:
    store.record_poll("a", PollRecord(T0, T0, status=200, etag='"x"', last_modified="y"))
    store.sync_feeds([("a", "http://a.example/new-feed")])
    state = store.feed_state("a")
    assert state.url.endswith("new-feed") and state.etag is None


def test_newer_schema_is_refused(db_url: str) -> None:
    Store.open(db_url).close()
    store = Store.open(db_url)
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE watcher_meta SET value = '99' WHERE key = 'schema_version'")
        )
    store.close()
    with pytest.raises(StoreError, match="schema version 99 is newer"):
        Store.open(db_url)


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="database postgresql") as caught:
        Store.open("postgresql://nobody:secret@127.0.0.1:1/none")
    assert "secret" not in str(caught.value)
