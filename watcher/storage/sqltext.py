"""SQL as text, and the two ways it runs: through SQLAlchemy (the store's connections, every
backend) or through the standard library's ``sqlite3`` (a quick read command on a SQLite
file). One text serves both, so the reads of :mod:`watcher.storage.reads` are written once,
and ``watcher alerts`` or ``watcher feeds`` need not import SQLAlchemy, which is half of
their start-up.

Nothing here imports SQLAlchemy. Both drivers see the same values: a time goes in as naive
UTC (on SQLite as the text SQLAlchemy stores, which sorts as the time does) and comes out,
through :func:`record`, as an aware UTC datetime.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from watcher.errors import NoDatabase, StoreError
from watcher.records import from_row

R = TypeVar("R")

# Every SQLite connection's settings, whichever driver opens it. WAL lets readers (the CLI)
# run while the daemon writes; NORMAL sync is durable in WAL mode except for the last
# commits before a power cut; busy_timeout rides out locks.
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000", "foreign_keys=ON")
SQLITE_TIMEOUT = 10  # seconds the driver waits for a lock

# Below this much free space a failed SQLite open is blamed on the full disk.
LOW_SPACE_BYTES = 256 * 1024
# SQLite's messages that name no cause; for these the folder itself is looked at.
_VAGUE_SQLITE_ERRORS = frozenset(
    {
        "unable to open database file",
        "disk I/O error",
        "database or disk is full",
        "attempt to write a readonly database",
    }
)


class Sql(Protocol):
    """One connection, inside a transaction, that runs SQL text with ``:name`` parameters."""

    @property
    def dialect(self) -> str:
        """The backend's name: ``sqlite`` or ``postgresql``."""

    def rows(self, statement: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every row of ``statement``, as column name → value."""


def bound(params: Mapping[str, Any] | None, dialect: str) -> dict[str, Any]:
    """Parameters as the column holds them: a time as naive UTC, which on SQLite is the
    text SQLAlchemy writes (always with microseconds, so that text order is time order)."""
    if not params:
        return {}
    return {name: db_value(value, dialect) for name, value in params.items()}


def db_value(value: Any, dialect: str) -> Any:
    """One parameter as the column holds it (see :func:`bound`)."""
    if not isinstance(value, datetime):
        return value
    naive = naive_utc(value)
    return naive.isoformat(" ", "microseconds") if dialect == "sqlite" else naive


def naive_utc(moment: datetime) -> datetime:
    """A time as every time column holds it: UTC without a zone (a naive time is UTC already)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def as_utc(value: datetime | str | None) -> datetime | None:
    """A time column's value (SQLite's text or a driver's naive datetime) as aware UTC."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _time_fields(kind: type[Any]) -> tuple[str, ...]:
    """The fields of a record dataclass that hold a time (by their annotation)."""
    found = _TIME_FIELDS.get(kind)
    if found is None:
        found = _TIME_FIELDS[kind] = tuple(
            f.name for f in fields(kind) if "datetime" in str(f.type)
        )
    return found


_TIME_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def record(kind: type[R], row: Mapping[str, Any], **extra: Any) -> R:
    """A record dataclass from a row of SQL text, its time fields made aware UTC."""
    times = {name: as_utc(row[name]) for name in _time_fields(kind) if name not in extra}
    return from_row(kind, row, **times, **extra)


def in_list(name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """``(:name_0, :name_1, ...)`` and its parameters: the same IN list on every driver."""
    params = {f"{name}_{n}": value for n, value in enumerate(values)}
    return "(" + ", ".join(f":{key}" for key in params) + ")", params


@dataclass
class Select:
    """A SELECT put together clause by clause (the filters a command was given)."""

    columns: str
    source: str
    conditions: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    group: str = ""
    order: str = ""
    limit: int | None = None

    def where(self, condition: str, **params: Any) -> Select:
        self.conditions.append(condition)
        self.params.update(params)
        return self

    def where_in(self, column: str, values: Sequence[Any], name: str) -> Select:
        placeholders, params = in_list(name, values)
        return self.where(f"{column} IN {placeholders}" if values else "1 = 0", **params)

    @property
    def text(self) -> str:
        parts = [f"SELECT {self.columns} FROM {self.source}"]
        if self.conditions:
            parts.append("WHERE " + " AND ".join(f"({c})" for c in self.conditions))
        if self.group:
            parts.append(f"GROUP BY {self.group}")
        if self.order:
            parts.append(f"ORDER BY {self.order}")
        if self.limit is not None:
            parts.append(f"LIMIT {int(self.limit)}")
        return " ".join(parts)

    def run(self, sql: Sql) -> list[dict[str, Any]]:
        return sql.rows(self.text, self.params)


def has_table(sql: Sql, name: str) -> bool:
    """Whether the database has a table ``name`` (in the search path, on PostgreSQL)."""
    if sql.dialect == "sqlite":
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"
    elif sql.dialect == "postgresql":
        query = (
            "SELECT 1 FROM pg_catalog.pg_class c WHERE c.relname = :name "
            "AND c.relkind IN ('r', 'p') AND pg_catalog.pg_table_is_visible(c.oid)"
        )
    else:
        query = "SELECT 1 FROM information_schema.tables WHERE table_name = :name"
    return bool(sql.rows(query, {"name": name}))


# ------------------------------------------------------------------ SQLite without SQLAlchemy


def plain_sqlite_file(url: str) -> Path | None:
    """The file of a plain ``sqlite:///FILE`` URL, which ``sqlite3`` opens as SQLAlchemy
    would; None for every other URL (a driver, options, escapes, memory), which SQLAlchemy
    opens."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or any(c in url for c in "?%#"):
        return None
    database = url[len(prefix) :]
    return Path(database).expanduser() if database not in ("", ":memory:") else None


class SqliteSql:
    """:class:`Sql` over a ``sqlite3`` connection."""

    dialect = "sqlite"

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def rows(self, statement: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        cursor = self.connection.execute(statement, bound(params, self.dialect))
        names = [column[0] for column in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def require_sqlite_file(path: Path | None, label: str) -> None:
    """A SQLite file that is not there is not opened: connecting would create it."""
    if path is not None and not path.exists():
        raise NoDatabase(label, f"no database file {path}")


def connect_sqlite(path: Path, label: str) -> sqlite3.Connection:
    """A connection to an existing file with the store's settings; a failure is a
    :class:`StoreError` that says why."""
    connection: sqlite3.Connection | None = None
    try:
        # isolation_level None: transactions are begun and ended by read_transaction alone.
        connection = sqlite3.connect(path, timeout=SQLITE_TIMEOUT, isolation_level=None)
        for pragma in SQLITE_PRAGMAS:
            connection.execute(f"PRAGMA {pragma}")
    except sqlite3.Error as exc:
        if connection is not None:
            connection.close()
        raise _sqlite_failure(exc, path, label) from None
    return connection


@contextmanager
def read_transaction(connection: sqlite3.Connection, path: Path, label: str) -> Iterator[SqliteSql]:
    """One consistent snapshot for a read's queries; a driver error is a StoreError that
    says why."""
    try:
        connection.execute("BEGIN")
        try:
            yield SqliteSql(connection)
        finally:
            connection.execute("ROLLBACK")  # it only read
    except sqlite3.Error as exc:
        raise _sqlite_failure(exc, path, label) from None


def _sqlite_failure(exc: sqlite3.Error, path: Path, label: str) -> StoreError:
    return StoreError(explain_sqlite_failure(path, short_reason(exc)), database=label)


def short_reason(exc: BaseException) -> str:
    """The first line of a driver error, without SQLAlchemy's statement dump (its ``orig``)."""
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def explain_sqlite_failure(path: Path | None, reason: str) -> str:
    """SQLite's "unable to open database file" or "disk I/O error" do not say why: look."""
    if path is None or reason not in _VAGUE_SQLITE_ERRORS:
        return reason
    if path.is_dir():
        return f"{reason} ({path} is a directory)"
    folder = path.parent
    with suppress(OSError):
        free = shutil.disk_usage(folder).free
        if free < LOW_SPACE_BYTES:
            return f"{reason} (no space left in {folder}: {free // 1024} KiB free)"
    probe = folder / f".watcher-probe-{os.getpid()}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return reason
    except OSError as exc:
        return f"{reason} (cannot create files in {folder}: {exc.strerror})"
    probe.unlink(missing_ok=True)
    return reason
