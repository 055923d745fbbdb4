"""The database as the quick read commands (``watcher alerts``, ``feeds``, ``status``) see
it: the SQL text of :class:`~watcher.storage.reads.ReadQueries`, run by the standard
library's ``sqlite3`` on a plain SQLite file, so that such a command imports neither
SQLAlchemy nor SQLModel (together more than half of its start-up), and by SQLAlchemy on
every other database (PostgreSQL, a SQLite URL with options), whose engine is imported then.
Either way it reads only: it never creates, migrates or writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from watcher.storage.reads import ReadQueries, require_schema
from watcher.storage.sqltext import (
    Sql,
    connect_sqlite,
    plain_sqlite_file,
    read_transaction,
    require_sqlite_file,
)


class Reader(ReadQueries):
    """Reads only. Open with :meth:`open`; close with :meth:`close`."""

    def __init__(
        self,
        label: str,
        begin: Callable[[], AbstractContextManager[Sql]],
        close: Callable[[], None],
    ) -> None:
        self.label = label
        self._begin = begin
        self._close = close

    def sql(self) -> AbstractContextManager[Sql]:
        return self._begin()

    @classmethod
    def open(cls, url: str) -> Reader:
        """A missing or outdated database raises :class:`NoDatabase` or :class:`StoreError`
        saying what to run, in the words :meth:`Store.open` without ``create`` uses."""
        path = plain_sqlite_file(url)
        return _on_sqlite_file(url, path) if path is not None else _on_engine(url)

    def close(self) -> None:
        self._close()


def _on_sqlite_file(url: str, path: Path) -> Reader:
    label = url  # what SQLAlchemy shows of a plain SQLite URL: it has no password to hide
    require_sqlite_file(path, label)
    connection: sqlite3.Connection = connect_sqlite(path, label)
    reader = Reader(label, lambda: read_transaction(connection, path, label), connection.close)
    try:
        with reader.sql() as sql:
            require_schema(sql, label)
    except BaseException:
        reader.close()
        raise
    return reader


def _on_engine(url: str) -> Reader:
    from watcher.storage.engine import check_schema, engine_sql, open_database

    engine, label = open_database(url, check_schema, create=False)
    return Reader(label, lambda: engine_sql(engine, label), engine.dispose)
