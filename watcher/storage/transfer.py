"""Copying one watcher database into another (``watcher migrate-to``), typically SQLite into
PostgreSQL, losing nothing.

The tables are the schema's own (every table of ``SQLModel.metadata``, so one added later is
copied without a change here), parents before children so every foreign key finds its row,
each table read in primary-key order and written in batches with its ids as they are. All
of it goes into the target in one transaction: a copy that fails half-way leaves the target
as it was, and can simply be run again. Then PostgreSQL's id sequences are moved past the
copied ids (else the next article inserted would take id 1 again), and the rows are counted
on both sides.

Both databases are opened by watcher's own migrations first, so they are at the same schema
version and the target's tables (and, on PostgreSQL, the queue's schema) are the ones
watcher makes. The caller keeps writers off both (``watcher.service.lock``): the source must
not change while it is read, and a copy is not a merge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Table, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import SQLModel

from watcher.errors import NoDatabase, StoreError
from watcher.storage import schema
from watcher.storage.engine import (
    EngineSql,
    database_label,
    open_engine,
    open_failure,
    require_file,
)
from watcher.storage.migrations import migrate
from watcher.storage.reads import schema_version
from watcher.storage.sqltext import short_reason

BATCH_ROWS = 1000
# Called after each batch: the table, its rows copied so far, its rows in all.
Progress = Callable[[str, int, int], None]

_META = schema.MetaRow.__table__  # type: ignore[attr-defined]
# The one row the target's migrations wrote themselves: both sides are at the same schema
# version once opened, so the target keeps its own and the source's is not copied.
_SCHEMA_ROW = _META.c.key == "schema_version"


class TargetNotEmpty(StoreError):
    """The target already holds watcher data: copying into it would mix two installations."""

    def __init__(self, database: str, held: dict[str, int]) -> None:
        self.held = held
        listed = ", ".join(f"{table} {count}" for table, count in held.items())
        super().__init__(
            f"already holds data ({listed} rows): refusing to copy into it; "
            "--replace deletes it first",
            database=database,
        )


@dataclass(frozen=True)
class TableCount:
    table: str
    source: int
    target: int

    @property
    def equal(self) -> bool:
        return self.source == self.target


def tables() -> list[Table]:
    """Every table of the schema, parents before the tables whose foreign keys name them."""
    return list(SQLModel.metadata.sorted_tables)


def open_source(url: str) -> Engine:
    """The source database, brought to this watcher's schema version (as ``watcher run``
    would) so its columns are the target's. Nothing is created: a missing file, or a
    database without watcher's tables, is :class:`NoDatabase`."""
    label = database_label(url)
    require_file(url, label)
    engine = open_engine(url, create=False)
    try:
        with engine.connect() as connection:
            found = schema_version(EngineSql(connection))
        if found is None:
            raise NoDatabase(label, "no watcher tables in it: nothing to copy")
        migrate(engine)
    except (SQLAlchemyError, OSError, StoreError) as exc:
        engine.dispose()
        if isinstance(exc, StoreError):
            raise
        raise StoreError(open_failure(url, exc), database=label) from None
    return engine


def copy_database(
    source: Engine,
    target: Engine,
    *,
    replace: bool = False,
    batch: int = BATCH_ROWS,
    progress: Progress | None = None,
) -> None:
    """Copy every row of ``source`` into ``target`` in one transaction of the target.

    Refuses (:class:`TargetNotEmpty`) a target holding data, unless ``replace``, which
    deletes that data first in the same transaction."""
    label = target.url.render_as_string(hide_password=True)
    with source.connect() as reader, target.begin() as writer:
        held = _held_rows(writer)
        if held and not replace:
            raise TargetNotEmpty(label, held)
        if held:
            _clear(writer)
        for table in tables():
            _copy_table(reader, writer, table, batch, progress, label)
        if writer.dialect.name == "postgresql":
            _advance_sequences(writer)


def count_rows(source: Engine, target: Engine) -> list[TableCount]:
    """Each table's rows on both sides, in copying order."""
    with source.connect() as left, target.connect() as right:
        return [TableCount(t.name, _count(left, t), _count(right, t)) for t in tables()]


def _count(connection: Connection, table: Table, where: ColumnElement[bool] | None = None) -> int:
    query = select(func.count()).select_from(table)
    if where is not None:
        query = query.where(where)
    return int(connection.execute(query).scalar_one())


def _held_rows(connection: Connection) -> dict[str, int]:
    """The target's rows by table, leaving out the schema version its migrations wrote."""
    held = {}
    for table in tables():
        count = _count(connection, table, ~_SCHEMA_ROW if table is _META else None)
        if count:
            held[table.name] = count
    return held


def _clear(connection: Connection) -> None:
    for table in reversed(tables()):  # children first: no foreign key left dangling
        delete = table.delete()
        connection.execute(delete.where(~_SCHEMA_ROW) if table is _META else delete)


def _copy_table(
    reader: Connection,
    writer: Connection,
    table: Table,
    batch: int,
    progress: Progress | None,
    label: str,
) -> None:
    total = _count(reader, table, ~_SCHEMA_ROW if table is _META else None)
    query = select(table).order_by(*table.primary_key.columns)
    if table is _META:
        query = query.where(~_SCHEMA_ROW)
    done = 0
    if progress is not None:
        progress(table.name, done, total)
    result = reader.execution_options(yield_per=batch).execute(query)
    for rows in result.partitions():
        values = [dict(row._mapping) for row in rows]
        try:
            writer.execute(table.insert(), values)
        except SQLAlchemyError as exc:
            first = {column.name: values[0][column.name] for column in table.primary_key}
            reason = f"copying table {table.name} (the batch from {first}): {short_reason(exc)}"
            raise StoreError(reason, database=label) from None
        done += len(values)
        if progress is not None:
            progress(table.name, done, total)


def _advance_sequences(connection: Connection) -> None:
    """Each id sequence to one past the highest copied id, so new rows do not collide."""
    quote = connection.dialect.identifier_preparer.quote
    for table in tables():
        column = table.autoincrement_column
        if column is None:
            continue
        connection.execute(
            text(
                "SELECT setval(pg_get_serial_sequence(:table, :column), "
                f"coalesce((SELECT max({quote(column.name)}) FROM {quote(table.name)}), 0) + 1, "
                "false)"
            ),
            {"table": quote(table.name), "column": column.name},
        )
