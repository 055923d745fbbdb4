"""The database as the quick read commands (``watcher alerts``, ``watcher feeds``) see it: the
queries of :class:`~watcher.storage.reads.ReadQueries` on tables reflected from the database,
each when first used, instead of the SQLModel schema's. The database's tables are the schema's
(made by :mod:`watcher.storage.migrations`, at the version :func:`require_schema` checked),
so the schema keeps one definition, and a read command does not import SQLModel, the ORM and
the schema's classes: 0.1 s of CPU on a 2-core box, a fifth of its start.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, Table, event

from watcher.storage.engine import open_database
from watcher.storage.reads import ReadQueries, UTCTimestamp, require_schema


class ReflectedTables(dict[str, Table]):
    """The database's tables by name, each reflected when first asked for (a read needs few
    of them), its time columns typed as the schema types them (aware UTC)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.metadata = MetaData()
        event.listen(self.metadata, "column_reflect", _as_schema_types)

    def __missing__(self, name: str) -> Table:
        # Joins name their columns, so no foreign key needs its table reflected too.
        table = Table(name, self.metadata, autoload_with=self.engine, resolve_fks=False)
        self[name] = table
        return table


def _as_schema_types(_inspector: Any, _table: Table, column: dict[str, Any]) -> None:
    if isinstance(column["type"], DateTime):
        column["type"] = UTCTimestamp()


class Reader(ReadQueries):
    """Reads only, never creates, migrates or writes. Open with :meth:`open`; close with
    :meth:`close`."""

    def __init__(self, engine: Engine, label: str) -> None:
        self.engine = engine
        self.label = label
        self.tables = ReflectedTables(engine)

    @classmethod
    def open(cls, url: str) -> Reader:
        """A missing or outdated database raises :class:`NoDatabase` or :class:`StoreError`
        saying what to run, as :meth:`Store.open` without ``create`` does."""

        def check(engine: Engine, label: str) -> None:
            require_schema(engine, label, ReflectedTables(engine))

        return cls(*open_database(url, check, create=False))

    def close(self) -> None:
        self.engine.dispose()
