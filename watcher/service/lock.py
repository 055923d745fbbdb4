"""One writer per database: ``watcher run`` and ``watcher check`` hold an exclusive lock.

The daemon holds it for its whole life, a check for its pass; a second writer refuses to
start and names the first. Two writers at once would not corrupt the database, but they
could store one text twice: a version's content hash is taken over the text without page
furniture, and what each process has learned to be furniture may differ, so the unique key
(article, hash) does not catch two processes storing the same new text at the same moment
(seen in testing before this lock: a check beside the daemon stored one page as versions 1
and 2, with two "new" alerts).

- SQLite: ``flock`` on ``<database>.lock`` next to the database file. The kernel drops the
  lock when its holder dies, however it dies (SIGKILL, OOM killer), so a crash never leaves
  a stale lock to clean up by hand. The pid written into the file only names the holder in
  the refusal message; the lock itself is the ``flock``. ``flock`` is local to one machine
  (on NFS Linux maps it onto POSIX locks, which work if the server supports them).
- PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) taken on a dedicated
  connection kept open for as long as the lock is held. The key is derived from the schema,
  so watchers in different schemas of one database do not exclude each other. The server
  drops the lock when that connection ends; if the connection is cut while the daemon runs
  (server restart, network), the lock is silently gone until the daemon restarts: a known
  limit.

Read-only commands (``alerts``, ``history``, ``diff``) take no lock.

The queue's workers (``watcher worker``, PostgreSQL only) are many writers by design: they
take the advisory lock *shared*, so any number of them run together while a ``watcher run``
or ``watcher check`` (exclusive) is refused beside them, and they beside it. What made two
writers unsafe is handled there instead: a job lock per article, and furniture read from the
database on every check (see :mod:`watcher.distributed`). On SQLite the lock stays exclusive.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from watcher.clock import utc_now
from watcher.errors import StoreError
from watcher.storage.engine import (
    database_label,
    engine_url,
    ensure_parent_dir,
    open_engine,
    os_reason,
    sqlite_file,
)
from watcher.storage.sqltext import short_reason
from watcher.storage.store import Store

log = logging.getLogger(__name__)

# First half of the PostgreSQL advisory key: "WATC"; the second half is the schema's CRC.
ADVISORY_SPACE = 0x57415443
_HOLDER_MAX = 200


class InstanceLocked(StoreError):
    """Another watcher process holds the database."""

    def __init__(self, database: str, holder: str, where: str) -> None:
        self.holder = holder
        super().__init__(
            f"in use by {holder} ({where}); only one watcher at a time writes to a database",
            database=database,
        )


def holder_description(command: str) -> str:
    """Who holds the lock, as the refusal message of a second writer shows it."""
    since = utc_now().strftime("%Y-%m-%d %H:%M:%S")
    return f"watcher {command}, pid {os.getpid()} on {socket.gethostname()} since {since} UTC"


@contextmanager
def instance_lock(url: str, command: str, *, shared: bool = False) -> Iterator[str]:
    """Hold the writer's lock on the database at ``url`` for ``watcher <command>``; yields
    where the lock lives. ``shared`` (the queue's workers) lets other shared holders in and
    keeps exclusive ones out; it applies on PostgreSQL only.

    Raises :class:`InstanceLocked` when another process holds it, :class:`StoreError` when
    the lock cannot be taken at all (unwritable state directory, database unreachable).
    """
    holder = holder_description(command)
    path = sqlite_file(url)
    if path is not None:
        lock_file = path.with_name(path.name + ".lock")
        with _file_lock(lock_file, database_label(url), holder) as where:
            yield where
    elif make_url(engine_url(url)).get_backend_name() == "postgresql":
        with _advisory_lock(url, holder, shared) as where:
            yield where
    else:  # in-memory SQLite: nobody else can open it anyway
        yield "no lock needed"


@contextmanager
def writer_store(url: str, command: str, *, shared: bool = False) -> Iterator[Store]:
    """The store of a writing command (``run``, ``check``, ``worker`` with ``shared``),
    opened under the writer's lock.

    The lock comes first: a refused second writer must not even migrate the schema.
    """
    with instance_lock(url, command, shared=shared):
        store = Store.open(url, writer=True)
        try:
            yield store
        finally:
            store.close()


# ------------------------------------------------------------------------- SQLite: flock


@contextmanager
def _file_lock(path: Path, label: str, holder: str) -> Iterator[str]:
    fd = _open_lock_file(path, label)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstanceLocked(label, _read_holder(fd), f"lock file {path}") from None
        _write_holder(fd, path, label, holder)
        try:
            yield f"lock file {path}"
        finally:
            # Emptied, not deleted: unlinking a flock'ed file lets two processes lock two
            # different inodes of the same name. The kernel releases the lock on close.
            with suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def _open_lock_file(path: Path, label: str) -> int:
    ensure_parent_dir(path, label)
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        reason = f"cannot open the lock file {path}: {os_reason(exc)}"
        raise StoreError(reason, database=label) from None


def _read_holder(fd: int) -> str:
    # Empty when the holder has locked but not yet written its pid (a few microseconds).
    data = os.pread(fd, _HOLDER_MAX, 0).decode("utf-8", "replace").strip()
    return data or "a watcher that has not written its pid yet"


def _write_holder(fd: int, path: Path, label: str, holder: str) -> None:
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (holder + "\n").encode(), 0)
    except OSError as exc:
        reason = f"cannot write the lock file {path}: {os_reason(exc)}"
        raise StoreError(reason, database=label) from None


# ------------------------------------------------------------- PostgreSQL: advisory lock


@contextmanager
def _advisory_lock(url: str, holder: str, shared: bool) -> Iterator[str]:
    label = database_label(url)
    engine = open_engine(url)
    try:
        connection = _connect(engine, label)
        try:
            key = _take_advisory_lock(connection, label, holder, shared)
            where = f"PostgreSQL advisory lock ({ADVISORY_SPACE}, {key})"
            log.debug("holding the %s", where)
            yield where
        finally:
            # Closing the session releases the lock; no explicit unlock needed.
            connection.close()
    finally:
        engine.dispose()


def _connect(engine: Engine, label: str) -> Connection:
    try:
        connection = engine.connect()
        # Autocommit: the connection must not sit "idle in transaction" for months.
        return connection.execution_options(isolation_level="AUTOCOMMIT")
    except SQLAlchemyError as exc:
        raise StoreError(short_reason(exc), database=label) from None


def _take_advisory_lock(connection: Connection, label: str, holder: str, shared: bool) -> int:
    try:
        schema = str(connection.execute(text("SELECT current_schema()")).scalar() or "")
        key = zlib.crc32(schema.encode()) & 0x7FFFFFFF
        # application_name is how a second instance learns who holds the lock.
        connection.execute(
            text("SELECT set_config('application_name', :name, false)"),
            {"name": holder[:63]},  # PostgreSQL's limit; the pid comes early
        )
        function = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        taken = connection.execute(
            text(f"SELECT {function}(CAST(:space AS integer), CAST(:key AS integer))"),
            {"space": ADVISORY_SPACE, "key": key},
        ).scalar()
        if not taken:
            holder = _advisory_holder(connection, key)
            where = f"PostgreSQL advisory lock ({ADVISORY_SPACE}, {key})"
            raise InstanceLocked(label, holder, where)
        return key
    except SQLAlchemyError as exc:
        raise StoreError(short_reason(exc), database=label) from None


def _advisory_holder(connection: Connection, key: int) -> str:
    row = connection.execute(
        text(
            "SELECT a.application_name, a.client_addr, l.pid FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
            "AND l.pid <> pg_backend_pid() "
            "AND l.classid = CAST(:space AS oid) AND l.objid = CAST(:key AS oid) "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        {"space": ADVISORY_SPACE, "key": key},
    ).first()
    if row is None:  # released between our attempt and this query
        return "a watcher that has just stopped (try again)"
    name, address, backend = row
    where = f" from {address}" if address else ""
    if name and name.startswith("watcher "):
        return f"{name}{where}"
    return f"PostgreSQL backend pid {backend}{where}"
