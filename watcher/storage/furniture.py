"""Learned page furniture: a line (digits masked) recurring in several articles of one host
is the site's furniture, not the story (a mixin of :class:`watcher.storage.store.Store`)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextlib import AbstractContextManager

from sqlalchemy import Connection, bindparam, update
from sqlmodel import Session, select

from watcher.records import DigestSet, key_digest
from watcher.storage.schema import SiteLineRow

_SITE_LINE = SiteLineRow.__table__  # type: ignore[attr-defined]
# A line recurring in this many distinct articles of one host is page furniture.
FURNITURE_MIN_ARTICLES = 3
FURNITURE_CACHE_SECONDS = 60.0

_BUMP_SITE_LINE = (
    update(_SITE_LINE)
    .where(_SITE_LINE.c.host == bindparam("h"), _SITE_LINE.c.key_digest == bindparam("d"))
    .values(articles=_SITE_LINE.c.articles + 1)
)



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
        digests = sorted({key_digest(key) for key in keys})
        if not host or not digests:
            return
        # Core and executemany: an article has dozens of lines, and this runs for every new one.
        with self._transaction() as connection:
            found = connection.execute(
                select(_SITE_LINE.c.key_digest, _SITE_LINE.c.articles).where(
                    _SITE_LINE.c.host == host, _SITE_LINE.c.key_digest.in_(digests)
                )
            )
            counts: dict[str, int] = {digest: count for digest, count in found}
            if counts:
                connection.execute(_BUMP_SITE_LINE, [{"h": host, "d": d} for d in counts])
            fresh = [d for d in digests if d not in counts]
            if fresh:
                connection.execute(
                    _SITE_LINE.insert(),
                    [{"host": host, "key_digest": d, "articles": 1} for d in fresh],
                )
        crossed = {d for d, n in counts.items() if n + 1 >= FURNITURE_MIN_ARTICLES}
        cached = self._furniture.get(host)
        if cached is not None and crossed - cached[1].digests:
            # Keep the cache exact instead of reloading it for every new article of the host.
            self._furniture[host] = (cached[0], DigestSet(cached[1].digests | crossed))
