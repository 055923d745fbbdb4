"""Learned page furniture: a line (digits masked) recurring in several articles of one host
is the site's furniture, not the story (a mixin of :class:`watcher.storage.store.Store`)."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager

from sqlalchemy import Connection
from sqlmodel import Session, select

from watcher.records import DigestSet, key_digest
from watcher.storage.engine import driver_marker
from watcher.storage.reads import chunks
from watcher.storage.schema import SiteLineRow

_SITE_LINE = SiteLineRow.__table__  # type: ignore[attr-defined]
# A line recurring in this many distinct articles of one host is page furniture.
FURNITURE_MIN_ARTICLES = 3
FURNITURE_CACHE_SECONDS = 60.0


class FurnitureQueries:
    """What each host's pages repeat. Mixed into Store, which supplies the sessions."""

    # Per host: when it was loaded, and the learned line digests.
    _furniture: dict[str, tuple[float, DigestSet]]
    furniture_cache_seconds: float

    def _session(self) -> AbstractContextManager[Session]:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def site_furniture(self, host: str) -> DigestSet:
        """The learned furniture of a host, cached for ``furniture_cache_seconds``.

        With one writer (the embedded daemon) the cache is exact: this process is the only one
        learning, and learning updates it. With several workers another process may learn a
        line this one has not seen yet, and a page judged here with the older set would count
        that line as text: an edit the other workers would not see. So workers keep nothing
        (``furniture_cache_seconds = 0``): every check reads what all of them learned."""
        cached = self._furniture.get(host)
        if cached is not None and time.monotonic() - cached[0] < self.furniture_cache_seconds:
            return cached[1]
        learned = self._load_furniture(host)
        self._furniture[host] = (time.monotonic(), learned)
        return learned

    def _load_furniture(self, host: str) -> DigestSet:
        with self._session() as session:
            digests = session.exec(
                select(SiteLineRow.key_digest).where(
                    SiteLineRow.host == host, SiteLineRow.articles >= FURNITURE_MIN_ARTICLES
                )
            ).all()
            return DigestSet(frozenset(digests))

    def learn_site_lines(self, host: str, keys: Iterable[str]) -> None:
        """Count one more article of ``host`` carrying each (masked) line."""
        with self._transaction() as connection:
            crossed = learn_lines(connection, host, keys)
        self.note_furniture(host, crossed)

    def note_furniture(self, host: str, crossed: frozenset[str]) -> None:
        """Add lines that have just become furniture (committed) to the host's cached set,
        which stays exact instead of being reloaded for every new article of the host."""
        cached = self._furniture.get(host)
        if cached is not None and crossed - cached[1].digests:
            self._furniture[host] = (cached[0], DigestSet(cached[1].digests | crossed))


def learn_lines(connection: Connection, host: str, keys: Iterable[str]) -> frozenset[str]:
    """In the caller's transaction: one more article of ``host`` carries each line; returns
    the digests this made furniture (at least FURNITURE_MIN_ARTICLES articles now).

    One upsert for all of an article's lines (dozens, for every new article), which returns
    each line's new count: no read before the write, and a concurrent writer's count is
    added to, never overwritten. Sorted, so that two writers lock rows in the same order.
    """
    digests = sorted({key_digest(key) for key in keys})
    if not host or not digests:
        return frozenset()
    marker = driver_marker(connection)
    crossed: set[str] = set()
    for chunk in chunks(digests, _BUMP_ROWS):
        params = tuple(value for digest in chunk for value in (host, digest))
        counts = connection.exec_driver_sql(_bump_site_lines(marker, len(chunk)), params)
        crossed.update(str(digest) for digest, count in counts if count >= FURNITURE_MIN_ARTICLES)
    return frozenset(crossed)


# Lines per upsert: two parameters each, under the 999 an older SQLite allows a statement.
_BUMP_ROWS = 400


@functools.lru_cache(maxsize=_BUMP_ROWS)  # one per row count met: a few dozen
def _bump_site_lines(marker: str, rows: int) -> str:
    """The upsert as the driver's own SQL, the same on SQLite and PostgreSQL. Run through
    SQLAlchemy's statement it cost three times the database's work: a parameter set built
    and bound per line, then batched back into this one statement."""
    table = _SITE_LINE.name
    values = ", ".join([f"({marker}, {marker}, 1)"] * rows)
    return (
        f"INSERT INTO {table} (host, key_digest, articles) VALUES {values} "
        f"ON CONFLICT (host, key_digest) DO UPDATE SET articles = {table}.articles + 1 "
        "RETURNING key_digest, articles"
    )
