"""Opening a database: the URL, the engine (SQLite pragmas, PostgreSQL's pre-ping), and
what an open that failed says (SQLite's "unable to open database file" says nothing: the
folder is looked at to tell a full disk, a read-only folder or a directory in the way)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DateTime, Table, TypeDecorator, create_engine, event, text
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from watcher.errors import StoreError
from watcher.storage.reads import require_schema
from watcher.storage.sqltext import (
    SQLITE_PRAGMAS,
    SQLITE_TIMEOUT,
    as_utc,
    bound,
    explain_sqlite_failure,
    naive_utc,
    require_sqlite_file,
    short_reason,
)


class UTCTimestamp(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out; naive UTC in the column.

    SQLite has no time zones, so the column holds naive UTC on every backend alike (the
    form :mod:`watcher.storage.sqltext` reads and binds too). Every time column of the schema
    has this type.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else naive_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return as_utc(value)


class EngineSql:
    """:class:`~watcher.storage.sqltext.Sql` over a SQLAlchemy connection (the store's)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect.name

    def rows(self, statement: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        result = self.connection.execute(text(statement), bound(params, self.dialect))
        return [dict(row) for row in result.mappings()]


@contextmanager
def engine_transaction(engine: Engine, label: str) -> Iterator[Connection]:
    """A connection in a transaction; a driver error in it is a StoreError."""
    with store_errors(label), engine.begin() as connection:
        yield connection


@contextmanager
def engine_sql(engine: Engine, label: str) -> Iterator[EngineSql]:
    """:func:`engine_transaction` for SQL text (the reads of :mod:`watcher.storage.reads`)."""
    with engine_transaction(engine, label) as connection:
        yield EngineSql(connection)


def check_schema(engine: Engine, label: str) -> None:
    """:func:`~watcher.storage.reads.require_schema` on a fresh connection (a read-only open)."""
    with engine.connect() as connection:
        require_schema(EngineSql(connection), label)


@contextmanager
def store_errors(label: str) -> Iterator[None]:
    """Driver errors become one-line StoreErrors; a refused unique key stays itself (the
    callers treat it as "already stored")."""
    try:
        yield
    except IntegrityError:
        raise
    except SQLAlchemyError as exc:
        raise StoreError(short_reason(exc), database=label) from None


def engine_url(url: str) -> str:
    """Plain ``postgresql://`` means the psycopg 3 driver (the one we depend on)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def database_label(url: str) -> str:
    """The URL as messages show it: without the password."""
    return make_url(engine_url(url)).render_as_string(hide_password=True)


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for PostgreSQL and in-memory SQLite."""
    parsed = make_url(engine_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def ensure_parent_dir(path: Path, label: str) -> None:
    """Create the folder of ``path`` (the state directory) if needed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = f"cannot create the directory {path.parent}: {os_reason(exc)}"
        raise StoreError(reason, database=label) from None


def os_reason(exc: OSError) -> str:
    """What is wrong, without Python's ``[Errno N]`` noise; when a file stands where a folder
    should be, name that file (mkdir only says "File exists")."""
    if exc.filename and isinstance(exc, FileExistsError | NotADirectoryError):
        where = Path(exc.filename)
        for ancestor in [where, *where.parents]:
            if ancestor.exists() and not ancestor.is_dir():
                blocker = "it" if ancestor == where else str(ancestor)
                return f"{blocker} is a file, not a directory"
    return exc.strerror or str(exc)


def open_failure(url: str, exc: SQLAlchemyError | OSError) -> str:
    if isinstance(exc, OSError):
        return (f"{exc.filename}: " if exc.filename else "") + os_reason(exc)
    return explain_sqlite_failure(sqlite_file(url), short_reason(exc))


def open_engine(url: str, *, create: bool = True, read_only: bool = False) -> Engine:
    """An engine for ``url``; with ``create`` a SQLite file's folder is made if missing.

    ``read_only`` connections cannot write even by mistake (the web view): SQLite opens the
    file with ``mode=ro``, PostgreSQL sessions default to read-only transactions."""
    parsed = make_url(engine_url(url))
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_file(url)
        if path is not None and create:
            ensure_parent_dir(path, database_label(url))
        if path is not None and read_only:
            parsed = parsed.set(database=f"file:{path}", query={"mode": "ro", "uri": "true"})
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_TIMEOUT})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(parsed, pool_pre_ping=True)
    if read_only:
        event.listen(engine, "connect", _postgres_read_only)
    return engine


def open_database(
    url: str,
    prepare: Callable[[Engine, str], None],
    *,
    create: bool,
    read_only: bool = False,
) -> tuple[Engine, str]:
    """An engine for ``url`` and the database's label, once ``prepare`` (creating, migrating
    or checking the schema) has passed. Without ``create`` nothing is made: a SQLite file that
    is not there raises :class:`NoDatabase`. A failure is one :class:`StoreError` saying
    what it means, and leaves no connection open."""
    label = database_label(url)
    if not create:
        require_file(url, label)
    engine: Engine | None = None
    try:
        engine = open_engine(url, create=create, read_only=read_only and not create)
        prepare(engine, label)
    except (SQLAlchemyError, OSError, StoreError) as exc:
        if engine is not None:
            engine.dispose()  # its pooled connection would keep the file open
        if isinstance(exc, StoreError):
            raise
        raise StoreError(open_failure(url, exc), database=label) from None
    return engine, label


def _postgres_read_only(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    dbapi_connection.commit()


def require_file(url: str, label: str) -> None:
    """A SQLite file that is not there is not opened: connecting would create it."""
    require_sqlite_file(sqlite_file(url), label)


def probe_write(engine: Engine, meta: Table) -> None:
    """Prove the database takes a write (``meta``: the ``watcher_meta`` table)."""
    # A row inserted and deleted in one transaction: pages really written (a WAL frame on
    # SQLite), nothing left behind. Rewriting a row with its own value would not do: SQLite
    # skips writing a cell that did not change.
    with engine.begin() as connection:
        connection.execute(meta.insert().values(key="write_probe", value=""))
        connection.execute(meta.delete().where(meta.c.key == "write_probe"))


def dialect_insert(dialect: str) -> Callable[..., Any]:
    """The INSERT of a backend (``connection.dialect.name``), which has ON CONFLICT."""
    # Imported here: the PostgreSQL dialect costs ~0.2 s to import, which only a store on
    # PostgreSQL should pay.
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def driver_marker(connection: Connection) -> str:
    """The driver's positional parameter marker, for SQL run by ``exec_driver_sql``:
    sqlite3's ``?``, psycopg's ``%s``."""
    return "?" if connection.dialect.paramstyle == "qmark" else "%s"
