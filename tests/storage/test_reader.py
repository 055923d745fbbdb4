"""The reader of the quick read commands (SQLite and PostgreSQL): the same SQL text, run by
``sqlite3`` on a plain SQLite file and by SQLAlchemy elsewhere, answers what the store
answers."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime

from support.archive import START, fill
from watcher.errors import NoDatabase, StoreError
from watcher.records import CheckRecord, NewAlert, NewVersion
from watcher.storage.engine import UTCTimestamp
from watcher.storage.reader import Reader
from watcher.storage.schema import TABLES
from watcher.storage.sqltext import as_utc, bound, plain_sqlite_file
from watcher.storage.store import Store


def test_every_time_column_of_the_schema_is_utc_timestamp() -> None:
    """What the SQL text assumes when it binds and reads times as naive UTC."""
    for table in TABLES.values():
        for column in table.columns:
            if isinstance(column.type, DateTime | UTCTimestamp):
                assert isinstance(column.type, UTCTimestamp), f"{table.name}.{column.name}"


@given(st.datetimes(timezones=st.just(UTC)))
def test_a_time_bound_for_sqlite_reads_back_as_itself(moment: datetime) -> None:
    text = bound({"at": moment}, "sqlite")["at"]
    assert as_utc(text) == moment
    assert len(text) == len("2026-12-03 10:00:00.000000")  # fixed width: text order is time order


def test_a_since_on_the_second_finds_the_alert_of_that_second(store: Store, db_url: str) -> None:
    """SQLite keeps times as text: a bound time must be written as the store writes it
    (with its zero microseconds), or an alert at exactly ``since`` would be missed."""
    at = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)
    article_id = fill(store, feeds=1, articles=1, versions=1).article_ids[0]
    version = NewVersion("T", "A text on the second.", "d" * 40, "page")
    alert = NewAlert("health", "changed", "desk-0", (), {})
    store.record_check(article_id, CheckRecord(at, None, version=version, alerts=(alert,)))
    reader = Reader.open(db_url)
    try:
        assert [a.created_at for a in reader.alerts(since=at, rules=["health"])] == [at]
        assert reader.alerts(since=at + timedelta(microseconds=1), rules=["health"]) == []
    finally:
        reader.close()


def _history(store: Store) -> None:
    """Feeds, articles, versions, alerts routed (one notifier's given up), an article
    changing on most of its checks, a worker."""
    article_ids = fill(store, feeds=2, articles=2, versions=3).article_ids
    store.route_new_alerts(lambda rule: ["desk", "pager"], START)
    waiting = store.waiting_deliveries("desk", due_by=None, limit=1)
    store.drop_deliveries("pager", START)
    assert waiting
    when = START + timedelta(days=1)
    for n in range(4):
        text = f"A text that keeps changing, take {n}."
        digest = hashlib.sha1(text.encode()).hexdigest()
        version = NewVersion("T", text, digest, "page")
        store.record_check(article_ids[0], CheckRecord(when, None, version=version))
    store.record_check(article_ids[0], CheckRecord(when, None))
    store.register_worker("desk:1:a", host="desk", pid=1, concurrency=2, now=START)


def test_the_reader_answers_what_the_store_answers(store: Store, db_url: str) -> None:
    _history(store)
    reader = Reader.open(db_url)
    try:
        for ask in (
            lambda s: s.alerts(),
            lambda s: s.alerts(limit=2, rules=["edits"], undelivered=True),
            lambda s: s.alerts(since=START + timedelta(minutes=25), feeds=["desk-1"]),
            lambda s: s.feed_states(),
            lambda s: s.feed_states(["desk-0", "gone"]),
            lambda s: s.feed_state("desk-1"),
            lambda s: s.changing_articles(2),
            lambda s: s.feed_totals(),
            lambda s: s.outbox_backlog(),
            lambda s: s.workers(seen_since=START - timedelta(days=1)),
        ):
            from_store, from_reader = ask(store), ask(reader)
            assert from_store == from_reader
            assert from_store  # each question has an answer to compare
    finally:
        reader.close()


def test_a_limit_keeps_the_newest_alerts_oldest_first(store: Store) -> None:
    _history(store)
    everything = store.alerts()
    assert len(everything) > 2
    assert store.alerts(limit=2) == everything[-2:]


def _refused_alike(url: str, kind: type[StoreError]) -> str:
    """The reader and the store without ``create`` refuse ``url`` in the same words."""
    with pytest.raises(kind) as by_reader:
        Reader.open(url)
    with pytest.raises(kind) as by_store:
        Store.open(url, create=False)
    assert str(by_reader.value) == str(by_store.value)
    return str(by_reader.value)


def test_the_reader_opens_what_the_store_opens_without_create(tmp_path: Path) -> None:
    _refused_alike(f"sqlite:///{tmp_path}/none.db", NoDatabase)
    assert not (tmp_path / "none.db").exists()


def test_an_older_schema_is_refused_in_the_stores_words(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    Store.open(url).close()
    import sqlite3

    with sqlite3.connect(tmp_path / "old.db") as db:
        db.execute("UPDATE watcher_meta SET value = '1' WHERE key = 'schema_version'")
    assert "older than this watcher's" in _refused_alike(url, StoreError)


def test_reading_a_sqlite_file_imports_no_sqlalchemy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    Store.open(url).close()
    probe = (
        "import sys\n"
        "from datetime import datetime, UTC\n"
        "from watcher.storage.reader import Reader\n"
        f"reader = Reader.open({url!r})\n"
        "reader.alerts(); reader.feed_states(); reader.changing_articles(1)\n"
        "reader.feed_totals(); reader.outbox_backlog()\n"
        "reader.workers(seen_since=datetime.now(UTC))\n"
        "reader.close()\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('sqlmodel', "
        "'sqlalchemy', 'watcher.storage.schema')))))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == []


@pytest.mark.parametrize(
    ("url", "plain"),
    [
        ("sqlite:///w.db", True),
        ("sqlite:////var/lib/w.db", True),
        ("sqlite:///w.db?timeout=5", False),
        ("sqlite+pysqlite:///w.db", False),
        ("sqlite:///w%20x.db", False),
        ("sqlite://", False),
        ("sqlite:///:memory:", False),
        ("postgresql://u@h/db", False),
    ],
)
def test_only_a_plain_sqlite_url_skips_sqlalchemy(url: str, plain: bool) -> None:
    assert (plain_sqlite_file(url) is not None) == plain


def test_a_sqlite_url_with_options_reads_through_sqlalchemy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    store = Store.open(url)
    try:
        _history(store)
        reader = Reader.open(url + "?timeout=5")
        try:
            assert reader.alerts() == store.alerts()
            assert reader.feed_totals() == store.feed_totals()
        finally:
            reader.close()
    finally:
        store.close()


def test_a_file_that_is_no_database_is_refused_in_the_stores_words(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("not a database, just notes\n" * 100)
    assert "not a database" in _refused_alike(f"sqlite:///{tmp_path}/notes.db", StoreError)
