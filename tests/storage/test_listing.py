"""Listing and searching articles, filtering alerts and dropping deliveries, on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from watcher.records import CheckRecord, FeedEntry, NewAlert, NewVersion
from watcher.storage.store import Store

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url)
    opened.sync_feeds([("a", "http://a.example/feed"), ("b", "http://b.example/feed")])
    yield opened
    opened.close()


def add(store: Store, feed: str, key: str, text: str, when: datetime, rule: str) -> int:
    link = f"http://news.example/{key}"
    store.add_entries(
        feed, [FeedEntry(key, None, link, link, f"Entry {key}", "<p>x</p>", None)], when
    )
    article = store.find_article(link)
    assert article is not None
    alert = NewAlert(rule, "new", feed, (), {"added": [text]})
    stored = NewVersion(title=f"Story {key}", text=text, content_hash=key, source="page")
    store.record_check(article.id, CheckRecord(when, None, version=stored, alerts=(alert,)))
    return article.id


def test_articles_by_feed_search_and_change_time(store: Store) -> None:
    add(store, "a", "one", "Talks on a 100% cease-fire resumed", T0, "r1")
    add(store, "b", "two", "The budget passed", T0 + timedelta(hours=2), "r2")
    listed = store.list_articles()
    assert [a.url for a in listed] == ["http://news.example/one", "http://news.example/two"]
    assert listed[0].feeds == ("a",) and listed[0].versions == 1 and listed[0].alerts == 1
    assert listed[0].title == "Story one"
    assert [a.url for a in store.list_articles(feeds=["b"])] == ["http://news.example/two"]
    assert [a.title for a in store.list_articles(search="CEASE-FIRE")] == ["Story one"]
    assert [a.title for a in store.list_articles(search="100%")] == ["Story one"]  # no wildcard
    assert store.list_articles(search="_") == []
    recent = store.list_articles(changed_since=T0 + timedelta(hours=1))
    assert [a.title for a in recent] == ["Story two"]
    assert [a.title for a in store.list_articles(limit=1)] == ["Story two"]


def test_alert_filters_and_dropping_deliveries(store: Store) -> None:
    first = add(store, "a", "one", "text one", T0, "r1")
    add(store, "b", "two", "text two", T0, "r2")
    assert [a.rule for a in store.alerts(rules=["r2"])] == ["r2"]
    assert [a.feed for a in store.alerts(feeds=["a"])] == ["a"]
    assert [a.article_id for a in store.alerts(article_id=first)] == [first]
    store.route_new_alerts(lambda rule: ["desk"], T0)
    assert len(store.alerts(undelivered=True)) == 2
    assert store.drop_deliveries("desk", T0) == 2
    assert store.drop_deliveries("desk", T0) == 0
    states = {d.state for a in store.alerts() for d in a.deliveries}
    assert states == {"gave_up"}
    assert store.waiting_deliveries("desk", due_by=None, limit=10) == []
