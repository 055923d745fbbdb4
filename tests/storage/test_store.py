"""The store on SQLite and PostgreSQL: idempotence keys, identity, migrations, learning."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

from watcher.clock import utc_now
from watcher.errors import StoreError
from watcher.records import (
    CheckRecord,
    DeliveryOutcome,
    FeedEntry,
    NewAlert,
    NewVersion,
    PollRecord,
)
from watcher.storage.schema import SCHEMA_VERSION
from watcher.storage.store import Store

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


def test_a_stored_version_teaches_its_lines_and_a_refused_one_does_not(store: Store) -> None:
    keys = frozenset({"updated 0 minutes ago", "most read"})
    store.add_entries("a", [entry(k, f"http://news.example/{k}") for k in "xyz"], T0)
    x, y, z = store.due_article_ids(T0)
    assert store.site_furniture("news.example").digests == frozenset()  # cached empty

    def check(digest: str) -> CheckRecord:
        stored = version(f"text {digest}", digest)
        return CheckRecord(T0, T0, version=stored, host="news.example", line_keys=keys)

    assert store.record_check(x, check("hx")) is not None
    assert store.record_check(x, check("hx")) is None  # a rerun: refused, nothing learned
    assert store.record_check(y, check("hy")) is not None
    assert "most read" not in store.site_furniture("news.example")  # two articles so far
    assert store.record_check(z, check("hz")) is not None
    # The third article makes the lines furniture, in the cache too (no reload within it).
    learned = store.site_furniture("news.example")
    assert all(key in learned for key in keys)
    with store.engine.connect() as connection:
        counts = connection.execute(text("SELECT articles FROM site_line")).scalars().all()
    assert sorted(counts) == [3, 3]


def test_an_article_of_more_lines_than_one_statement_takes_learns_every_line(
    store: Store,
) -> None:
    """The upsert goes in slices of rows (a statement's parameters are capped): a long live
    page's thousand lines are all counted, and those that cross the mark are all returned."""
    lines = [f"line {n}" for n in range(1001)]
    for _ in range(2):
        store.learn_site_lines("news.example", lines)
    assert len(store.site_furniture("news.example")) == 0  # cached: what crosses is added
    store.learn_site_lines("news.example", lines[:900])
    learned = store.site_furniture("news.example")
    assert len(learned) == 900 and all(line in learned for line in lines[:900])
    with store.engine.connect() as connection:
        counts = connection.execute(text("SELECT articles FROM site_line")).scalars().all()
    assert sorted(counts) == [2] * 101 + [3] * 900


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


def test_a_schema_1_database_is_migrated_and_its_alerts_are_routed(tmp_path: Path) -> None:
    """A database written before the outbox existed gains it; its alerts are sent, not lost."""
    from sqlalchemy import create_engine

    from watcher.storage.schema import DeliveryRow, SentMessageRow

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    old_tables = [
        table
        for table in SQLModel.metadata.sorted_tables
        if table.name not in (DeliveryRow.__tablename__, SentMessageRow.__tablename__)
    ]
    SQLModel.metadata.create_all(engine, tables=old_tables)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE feed DROP COLUMN disabled_at"))  # added in 2
        connection.execute(text("ALTER TABLE feed DROP COLUMN body_digest"))  # added in 3
        connection.execute(text("DROP INDEX ix_version_warc_file"))  # added in 4
        for column in ("warc_file", "warc_offset", "warc_length"):
            connection.execute(text(f"ALTER TABLE version DROP COLUMN {column}"))
        for table, column in (  # added in 6 (alert.occurrence goes with the table's rebuild)
            ("article", "previous_version"),
            ("article", "flips"),
            ("version", "extra"),
            ("version", "classes"),
            ("article", "gone_checks"),  # added in 8, with two tables
            ("article", "removed_at"),
        ):
            connection.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        connection.execute(text("DROP TABLE article_event"))
        connection.execute(text("DROP TABLE article_alias"))
        connection.execute(text("INSERT INTO watcher_meta VALUES ('schema_version', '1')"))
        connection.execute(
            text(
                "INSERT INTO article (id, url, host, entry_title, entry_content, first_seen, "
                "checks, failures, status) VALUES (1, 'https://x.example/a', 'x.example', 't', "
                "'', '2026-11-01 00:00:00', 0, 0, 'tracking')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO version (id, article_id, number, title, text, content_hash, source,"
                " fetched_at, last_seen_at, times_seen) VALUES (1, 1, 1, 't', 'body', 'h', "
                "'page', '2026-11-01 00:00:00', '2026-11-01 00:00:00', 1)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO alert (rule, event, article_id, version_id, feed, matched, detail, "
                "created_at, delivery_state) VALUES ('r', 'new', 1, 1, 'f', '[]', '{}', "
                "'2026-11-01 00:00:00', 'pending')"
            )
        )
    engine.dispose()
    store = Store.open(url)
    try:
        with store.engine.connect() as connection:
            version = connection.execute(
                text("SELECT value FROM watcher_meta WHERE key = 'schema_version'")
            ).scalar()
        assert version == str(SCHEMA_VERSION)
        (alert,) = store.alerts()
        assert alert.delivery_state == "new"  # the outbox will route it like a fresh one
        assert store.route_new_alerts(lambda rule: ["desk"], utc_now()) == 1
        assert [d.notifier for d in store.alerts()[0].deliveries] == ["desk"]
    finally:
        store.close()


def test_prune_deletes_old_retired_articles_but_not_undelivered_alerts(store: Store) -> None:
    alert = NewAlert("r", "new", "a", (), {})
    ids = []
    for key in ("old-sent", "old-waiting", "recent", "tracking"):
        store.add_entries("a", [entry(key, f"http://news.example/{key}")], T0)
        article = store.find_article(f"http://news.example/{key}")
        assert article is not None
        retire = key != "tracking"
        checked = T0 if key.startswith("old") else T0 + timedelta(days=60)
        record = CheckRecord(
            checked, None if retire else T0, version=version(key, key), alerts=(alert,)
        )
        store.record_check(article.id, record)
        ids.append(article.id)
    store.route_new_alerts(lambda rule: ["desk"], T0)
    by_article = {a.article_id: a for a in store.alerts()}
    sent = store.waiting_deliveries("desk", due_by=None, limit=10)
    outcomes = [
        DeliveryOutcome(d.id, "sent", 1, T0, None, None, frozenset({"k"}))
        for d in sent
        if d.alert.article_id != ids[1]
    ]
    store.record_deliveries("desk", outcomes, sent_at=T0)
    assert len(by_article) == 4
    deleted = store.prune(
        retired_before=T0 + timedelta(days=30), messages_before=T0 + timedelta(days=1)
    )
    assert deleted == {"articles": 1, "sent_messages": 1}
    left = {a.article_id for a in store.alerts()}
    assert left == set(ids[1:])  # the waiting alert's article, the recent one, the tracked one
    assert store.counts()["versions"] == 3
    again = store.prune(retired_before=T0 + timedelta(days=30), messages_before=T0)
    assert again == {"articles": 0, "sent_messages": 0}
    assert store.prune(retired_before=None, messages_before=T0)["articles"] == 0
