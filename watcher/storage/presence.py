"""Is the database still the one opened at start? Deleted, replaced or dropped is "gone".

A SQLite database deleted under a running process does not stop it: its open connections
keep writing into the unlinked file, every commit succeeds, and the results exist nowhere.
A PostgreSQL schema dropped under it fails every query, one by one. So a writer takes an
:class:`Anchor` right after opening the database and looks again now and then:

- SQLite: the file's (st_dev, st_ino) at open. A missing path, or another inode at the path
  (a file copied or restored over it), means the daemon's connections write to a file
  nobody will read again.
- PostgreSQL: every table of watcher's schema must resolve (``to_regclass``, through the
  connection's search_path: a dropped schema or table is gone). A failed connection is gone
  only when the server says the database does not exist (server messages in English, the
  default ``lc_messages``); anything else (refused, timed out, shutting down) is a server
  restarting or a network away for a moment, which :class:`DatabaseWatch` rides out for up
  to ``UNREACHABLE_SECONDS``.
- In-memory SQLite cannot be removed by anyone else: always there.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel

from watcher.errors import DatabaseGone
from watcher.storage import schema  # noqa: F401  (registers the tables whose presence is checked)
from watcher.storage.engine import database_label, engine_url, sqlite_file
from watcher.storage.sqltext import short_reason

log = logging.getLogger(__name__)

# How often the daemon looks: a stat() or one catalogue query, cheap at this pace, and a
# loss is noticed within seconds.
CHECK_SECONDS = 2.0
# A PostgreSQL restart or fail-over takes seconds to a minute. Past two minutes nothing is
# lost by exiting: systemd restarts the daemon, which waits at start-up like any other, and
# a fresh start also takes back the writer's advisory lock, which the cut session dropped.
UNREACHABLE_SECONDS = 120.0
_DATABASE_DROPPED = re.compile(r'database ".*" does not exist')
_MISSING_TABLES = text(
    "SELECT name FROM unnest(CAST(:names AS text[])) AS name "
    "WHERE to_regclass(quote_ident(name)) IS NULL"
)


@dataclass(frozen=True)
class Sighting:
    """One look: ``gone`` says why the database is lost for good; ``unreachable`` why it could
    not be looked at this time (perhaps passing). Both None: it is there."""

    gone: str | None = None
    unreachable: str | None = None


class Anchor:
    """What to look at to know the database is still there. This base is for databases
    nobody else can remove (in-memory SQLite)."""

    def look(self) -> Sighting:
        return Sighting()


class FileAnchor(Anchor):
    def __init__(self, path: Path) -> None:
        self.path = path
        found = path.stat()
        self.identity = (found.st_dev, found.st_ino)

    def look(self) -> Sighting:
        try:
            found = self.path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return Sighting(gone=self._lost("missing"))
        except OSError as exc:
            return Sighting(unreachable=f"cannot stat {self.path}: {exc.strerror}")
        if (found.st_dev, found.st_ino) != self.identity:
            return Sighting(gone=self._lost(f"inode {found.st_ino}"))
        return Sighting()

    def _lost(self, now: str) -> str:
        return f"deleted or replaced while running (inode {self.identity[1]} → {now})"


class SchemaAnchor(Anchor):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tables = [table.name for table in SQLModel.metadata.sorted_tables]

    def look(self) -> Sighting:
        try:
            with self.engine.connect() as connection:
                missing = connection.execute(_MISSING_TABLES, {"names": self.tables}).scalars()
                absent = list(missing)
        except SQLAlchemyError as exc:
            reason = short_reason(exc)
            if _DATABASE_DROPPED.search(reason):
                return Sighting(gone=f"dropped while running ({reason})")
            return Sighting(unreachable=reason)
        if absent:
            return Sighting(gone=f"watcher's tables dropped while running ({_listed(absent)})")
        return Sighting()


def take_anchor(url: str, engine: Engine) -> Anchor:
    """The anchor of the database just opened at ``url`` through ``engine``."""
    path = sqlite_file(url)
    if path is not None:
        return FileAnchor(path)
    if make_url(engine_url(url)).get_backend_name() == "postgresql":
        return SchemaAnchor(engine)
    return Anchor()


def require_present(anchor: Anchor, url: str, consequence: str) -> None:
    """Raise :class:`DatabaseGone` if the database is gone (a passing outage is no loss)."""
    gone = anchor.look().gone
    if gone is not None:
        raise DatabaseGone(database_label(url), gone, consequence)


class DatabaseWatch:
    """Looks at an anchor again and again; a loss, or an outage longer than ``patience``
    seconds, is the end. Outages are logged when they start and when they end."""

    def __init__(
        self,
        anchor: Anchor,
        url: str,
        patience: float = UNREACHABLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.anchor, self.label = anchor, database_label(url)
        self.patience, self.clock = patience, clock
        self.unreachable_since: float | None = None

    def verdict(self) -> DatabaseGone | None:
        """One look; the loss to stop for, or None to carry on."""
        sighting = self.anchor.look()
        if sighting.gone is not None:
            return DatabaseGone(self.label, sighting.gone)
        if sighting.unreachable is None:
            if self.unreachable_since is not None:
                log.info("database %s reachable again", self.label)
            self.unreachable_since = None
            return None
        return self._outage(sighting.unreachable)

    def _outage(self, reason: str) -> DatabaseGone | None:
        now = self.clock()
        if self.unreachable_since is None:
            self.unreachable_since = now
            log.warning(
                "database %s unreachable (%s); still trying, stopping if it lasts %.0f s",
                self.label,
                reason,
                self.patience,
            )
        elif now - self.unreachable_since > self.patience:
            what = f"unreachable for {now - self.unreachable_since:.0f} s ({reason})"
            return DatabaseGone(self.label, what)
        return None


async def watch_database(watch: DatabaseWatch, every: float = CHECK_SECONDS) -> DatabaseGone:
    """Look every ``every`` seconds until the database is lost; returns the loss."""
    while True:
        await asyncio.sleep(every)
        # In a thread: a connection attempt to an unreachable server must not block the loop.
        gone = await asyncio.to_thread(watch.verdict)
        if gone is not None:
            return gone


def _listed(names: list[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"{', '.join(names[:shown])}{more} missing"
