"""The reader of the quick read commands (SQLite and PostgreSQL): the database's tables,
reflected, are the SQLModel schema's, and the same queries on them answer what the store
answers."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import DateTime

from support.archive import START, fill
from watcher.errors import NoDatabase, StoreError
from watcher.records import CheckRecord, NewVersion
from watcher.storage.reader import Reader
from watcher.storage.reads import UTCTimestamp
from watcher.storage.schema import TABLES
from watcher.storage.store import Store


def test_every_time_column_of_the_schema_is_utc_timestamp() -> None:
    """What the reader assumes when it types the reflected time columns."""
    for table in TABLES.values():
        for column in table.columns:
            if isinstance(column.type, DateTime | UTCTimestamp):
                assert isinstance(column.type, UTCTimestamp), f"{table.name}.{column.name}"


def test_reflected_tables_are_the_schemas(store: Store, db_url: str) -> None:
    reader = Reader.open(db_url)
    try:
        for name, table in TABLES.items():
            reflected = reader.tables[name]
            assert [c.name for c in reflected.columns] == [c.name for c in table.columns], name
            for column in table.columns:
                kind = type(reflected.columns[column.name].type)
                assert (kind is UTCTimestamp) == isinstance(column.type, UTCTimestamp), (
                    f"{name}.{column.name}: {kind.__name__}"
                )
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


def test_the_reader_opens_what_the_store_opens_without_create(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path}/none.db"
    with pytest.raises(NoDatabase) as by_reader:
        Reader.open(missing)
    with pytest.raises(NoDatabase) as by_store:
        Store.open(missing, create=False)
    assert str(by_reader.value) == str(by_store.value)
    assert not (tmp_path / "none.db").exists()


def test_an_older_schema_is_refused_in_the_stores_words(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    Store.open(url).close()
    import sqlite3

    with sqlite3.connect(tmp_path / "old.db") as db:
        db.execute("UPDATE watcher_meta SET value = '1' WHERE key = 'schema_version'")
    with pytest.raises(StoreError) as by_reader:
        Reader.open(url)
    with pytest.raises(StoreError) as by_store:
        Store.open(url, create=False)
    assert str(by_reader.value) == str(by_store.value)
    assert "older than this watcher's" in str(by_reader.value)


def test_reading_imports_no_sqlmodel(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    Store.open(url).close()
    probe = (
        "import sys\n"
        "from watcher.storage.reader import Reader\n"
        f"reader = Reader.open({url!r})\n"
        "reader.alerts(); reader.feed_states(); reader.changing_articles(1)\n"
        "reader.close()\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('sqlmodel', "
        "'sqlalchemy.orm', 'watcher.storage.schema')))))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == []


def test_a_table_the_database_lacks_is_a_store_error(store: Store, db_url: str) -> None:
    reader = Reader.open(db_url)
    try:
        with pytest.raises(StoreError, match="no table 'nowhere' in the database"):
            reader.tables["nowhere"]
    finally:
        reader.close()
