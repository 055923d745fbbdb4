"""Copying a database (``watcher migrate-to``): every table of the schema, row for row, into
SQLite and PostgreSQL; sequences past the copied ids; a failed copy leaves the target empty.

The source is filled generically, one row in every table the schema declares, so a table
added to the schema later is filled and checked too: a copy that skipped it fails here."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, Table, select
from sqlalchemy.engine import Engine

from watcher.errors import NoDatabase, StoreError
from watcher.storage.store import Store
from watcher.storage.transfer import (
    TargetNotEmpty,
    copy_database,
    count_rows,
    open_source,
    tables,
)

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
ROWS = 3  # per table: more than one batch of 2


def value_for(table: Table, column: Any, n: int) -> Any:
    """A value of the column's type for row ``n``; a foreign key names the parent's row n
    (every table has rows 1..ROWS, parents filled first)."""
    if column.foreign_keys or (column.primary_key and isinstance(column.type, Integer)):
        return n
    # A TypeDecorator (AutoString, UTCTimestamp) says what it stores through its impl.
    kind = getattr(column.type, "impl_instance", column.type).python_type
    if kind is datetime:
        return T0.replace(minute=n)
    if kind is int:
        return n * 10
    if kind is str:
        return f"{table.name}.{column.name} #{n} — ünïcode"
    raise AssertionError(f"no test value for {table.name}.{column.name} ({kind}): add one")


def fill_every_table(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in tables():
            rows = [{c.name: value_for(table, c, n) for c in table.columns} for n in (1, 2, 3)]
            connection.execute(table.insert(), rows)


def all_rows(engine: Engine, table: Table) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        query = select(table).order_by(*table.primary_key.columns)
        return [tuple(row) for row in connection.execute(query)]


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'source.db'}"
    Store.open(url).close()
    engine = open_source(url)
    fill_every_table(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def target(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url, writer=True)
    yield store
    store.close()


def test_every_table_is_copied_row_for_row(source: Engine, target: Store) -> None:
    seen: list[tuple[str, int, int]] = []
    copy_database(source, target.engine, batch=2, progress=lambda *step: seen.append(step))
    for table in tables():
        copied = all_rows(target.engine, table)
        expected = all_rows(source, table)
        assert copied == expected, f"table {table.name} not copied as it was"
        assert len(copied) >= ROWS or table.name == "watcher_meta", table.name
    counts = count_rows(source, target.engine)
    assert [c.table for c in counts] == [t.name for t in tables()]
    assert all(c.equal for c in counts)
    assert ("version", ROWS, ROWS) in seen and ("version", 2, ROWS) in seen


def test_new_rows_take_ids_past_the_copied_ones(source: Engine, target: Store) -> None:
    copy_database(source, target.engine)
    target.sync_feeds([("later", "http://later.example/feed")])
    with target.engine.connect() as connection:
        feed = next(t for t in tables() if t.name == "feed")
        ids = connection.execute(select(feed.c.id).where(feed.c.name == "later")).scalars()
        assert list(ids) == [ROWS + 1]


def test_a_target_with_data_is_refused_unless_replaced(source: Engine, target: Store) -> None:
    copy_database(source, target.engine)
    before = count_rows(source, target.engine)
    refusal = r"already holds data \(article 3, feed 3, .*--replace deletes it first"
    with pytest.raises(TargetNotEmpty, match=refusal):
        copy_database(source, target.engine)
    assert count_rows(source, target.engine) == before
    copy_database(source, target.engine, replace=True)
    assert count_rows(source, target.engine) == before


def test_a_copy_that_fails_leaves_the_target_as_it_was(source: Engine, target: Store) -> None:
    """A value the target refuses (PostgreSQL takes no NUL in a text, SQLite did) stops the
    copy naming the table and the batch, and nothing of the copy stays."""
    if target.engine.dialect.name != "postgresql":
        pytest.skip("a SQLite target takes every value a SQLite source holds")
    feed = next(t for t in tables() if t.name == "feed")
    with source.begin() as connection:
        connection.execute(feed.update().where(feed.c.id == 2).values(title="a\x00b"))
    with pytest.raises(StoreError, match=r"copying table feed \(the batch from \{'id': 1\}\)"):
        copy_database(source, target.engine)
    held = [c for c in count_rows(source, target.engine) if c.target and c.table != "watcher_meta"]
    assert held == []


def test_a_source_without_watcher_tables_is_not_copied(tmp_path: Path) -> None:
    with pytest.raises(NoDatabase, match="no database file"):
        open_source(f"sqlite:///{tmp_path / 'missing.db'}")
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(NoDatabase, match="no watcher tables in it: nothing to copy"):
        open_source(f"sqlite:///{empty}")
