"""The database as the quick read commands (``watcher alerts``, ``feeds``, ``status``) see
it: the queries of :class:`~watcher.storage.reads.ReadQueries` on tables reflected from the
database, each when first used, instead of the SQLModel schema's. The database's tables are
the schema's (made by :mod:`watcher.storage.migrations`, at the version :func:`require_schema`
checked), so the schema keeps one definition, and a read command does not import SQLModel,
the ORM and the schema's classes: 0.1 s of CPU on a 2-core box, a fifth of its start.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, DateTime, Engine, MetaData, Table, inspect
from sqlalchemy.exc import NoSuchTableError

from watcher.errors import StoreError
from watcher.storage.engine import open_database
from watcher.storage.reads import ReadQueries, UTCTimestamp, require_schema, store_errors


class ReflectedTables(dict[str, Table]):
    """The database's tables by name, each reflected when first asked for (a read needs few
    of them). Only their columns: the reads join on explicit conditions and write nothing,
    so keys, indexes and constraints would be queried for nothing. A time column gets the
    type the schema gives every time column (aware UTC). A driver error while reflecting is
    a :class:`StoreError`, as it is in a query."""

    def __init__(self, engine: Engine, label: str) -> None:
        super().__init__()
        self.engine = engine
        self.label = label
        self.metadata = MetaData()

    def __missing__(self, name: str) -> Table:
        with store_errors(self.label):
            try:
                found = inspect(self.engine).get_columns(name)
            except NoSuchTableError:  # SQLite says so; PostgreSQL finds no columns
                found = []
        if not found:
            raise StoreError(f"no table {name!r} in the database", database=self.label)
        columns = [Column(c["name"], _schema_type(c["type"])) for c in found]
        table = self[name] = Table(name, self.metadata, *columns)
        return table


def _schema_type(kind: Any) -> Any:
    return UTCTimestamp() if isinstance(kind, DateTime) else kind


class Reader(ReadQueries):
    """Reads only, never creates, migrates or writes. Open with :meth:`open`; close with
    :meth:`close`."""

    def __init__(self, engine: Engine, label: str) -> None:
        self.engine = engine
        self.label = label
        self.tables = ReflectedTables(engine, label)

    @classmethod
    def open(cls, url: str) -> Reader:
        """A missing or outdated database raises :class:`NoDatabase` or :class:`StoreError`
        saying what to run, as :meth:`Store.open` without ``create`` does."""

        def check(engine: Engine, label: str) -> None:
            require_schema(engine, label, ReflectedTables(engine, label))

        return cls(*open_database(url, check, create=False))

    def close(self) -> None:
        self.engine.dispose()
