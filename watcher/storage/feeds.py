"""The feed queries of :class:`watcher.storage.store.Store` (a mixin): feed rows, polls,
and a feed's entries taken as tracked articles, a chunk at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Connection, String, bindparam, case, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from watcher.errors import StoreError
from watcher.records import EntriesTaken, FeedEntry, PollRecord
from watcher.storage.engine import UTCTimestamp
from watcher.storage.entries import ENTRY_CHUNK, take_chunk
from watcher.storage.schema import FeedRow

log = logging.getLogger(__name__)

_FEED = FeedRow.__table__  # type: ignore[attr-defined]
_FEED_ID = select(_FEED.c.id).where(_FEED.c.name == bindparam("name"))
_BY_NAME = _FEED.c.name == bindparam("b_name")
_POLL_SKIPPED = update(_FEED).where(_BY_NAME).values(next_poll_at=bindparam("b_next"))
# Typed here: a bind inside case() would not take the column's type from values().
_AT = bindparam("b_at", type_=UTCTimestamp())
_POLLED: dict[str, Any] = {
    "next_poll_at": bindparam("b_next"),
    "last_polled_at": _AT,
    "last_status": bindparam("b_status"),
}
_POLL_SUCCEEDED = (
    update(_FEED)
    .where(_BY_NAME)
    .values(
        **_POLLED,
        last_success_at=_AT,
        error_streak=0,
        last_error=None,
        etag=bindparam("b_etag"),
        last_modified=bindparam("b_modified"),
        # An empty or missing title keeps the one known.
        title=func.coalesce(func.nullif(bindparam("b_title", type_=String), ""), _FEED.c.title),
        body_digest=bindparam("b_digest"),
        entries_seen=_FEED.c.entries_seen + bindparam("b_entries"),
    )
)
_POLL_FAILED = (
    update(_FEED)
    .where(_BY_NAME)
    .values(
        **_POLLED,
        error_streak=_FEED.c.error_streak + 1,
        last_error=bindparam("b_error"),
        disabled_at=case(
            (bindparam("b_disable", type_=Boolean), _AT), else_=_FEED.c.disabled_at
        ),
    )
)
# Tries of one chunk of feed entries that keeps meeting a concurrent poll of the same stories.
CHUNK_TRIES = 5


class FeedQueries:
    """Feeds and their entries. Mixed into Store, which supplies the sessions."""

    label: str

    def _session(self) -> AbstractContextManager[Session]:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def sync_feeds(self, feeds: Iterable[tuple[str, str]]) -> None:
        """Make a row for every configured (name, url); a changed URL forgets its cache keys."""
        with self._session() as session:
            rows = {row.name: row for row in session.exec(select(FeedRow))}
            for name, url in feeds:
                row = rows.get(name)
                if row is None:
                    session.add(FeedRow(name=name, url=url))
                elif row.url != url:
                    # A new URL is a new start: no cache keys, no error streak, not disabled.
                    row.url, row.etag, row.last_modified = url, None, None
                    row.body_digest = None
                    row.error_streak, row.disabled_at = 0, None
                    session.add(row)
            session.commit()

    def record_poll(self, name: str, poll: PollRecord) -> None:
        """Write a poll's outcome to the feed's row: one prebuilt UPDATE, no ORM object."""
        values: dict[str, object]
        if poll.skipped:
            statement, values = _POLL_SKIPPED, {"b_next": poll.next_poll_at}
        elif poll.error is None:
            statement, values = _POLL_SUCCEEDED, _poll_values(poll)
        else:
            statement, values = _POLL_FAILED, _poll_values(poll)
        with self._transaction() as connection:
            if connection.execute(statement, {"b_name": name, **values}).rowcount == 0:
                raise StoreError(f"no feed named {name!r}", database=self.label)

    # --------------------------------------------------------------- articles

    def add_entries(self, feed_name: str, entries: Sequence[FeedEntry], now: datetime) -> int:
        """Track every entry (due at once if new); returns how many articles are new."""
        return self.take_entries(feed_name, entries, now).new

    def take_entries(
        self,
        feed_name: str,
        entries: Sequence[FeedEntry],
        now: datetime,
        *,
        max_new: int | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> EntriesTaken:
        """Track entries chunk by chunk, one transaction each: at most ``max_new`` new
        articles (the rest is ``deferred``, for the next polls), and no chunk started once
        ``stop()`` holds (its entries count as deferred too).

        Safe to call from a worker thread: each chunk takes a pooled connection of its own.
        """
        with self._transaction() as connection:
            feed_id = connection.execute(_FEED_ID, {"name": feed_name}).scalar_one()
        new = deferred = 0
        for start in range(0, len(entries), ENTRY_CHUNK):
            chunk = entries[start : start + ENTRY_CHUNK]
            if stop():
                deferred += len(chunk)  # an upper bound: known ones among them are not new
                continue
            room = None if max_new is None else max_new - new
            taken = self._take_chunk(feed_id, chunk, now, room)
            new, deferred = new + taken.new, deferred + taken.deferred
        return EntriesTaken(new, deferred)

    def _take_chunk(
        self, feed_id: int, chunk: Sequence[FeedEntry], now: datetime, room: int | None
    ) -> EntriesTaken:
        for attempt in range(1, CHUNK_TRIES + 1):
            try:
                with self._transaction() as connection:
                    return take_chunk(connection, feed_id, chunk, now, room)
            except IntegrityError:
                # Another feed's poll, in another thread, created one of these stories since
                # the chunk looked them up: its transaction rolled back; look again.
                if attempt == CHUNK_TRIES:
                    raise
                log.debug("feed %s: a chunk met a concurrent poll, taking it again", feed_id)
        raise AssertionError("unreachable")


def _poll_values(poll: PollRecord) -> dict[str, object]:
    return {
        "b_next": poll.next_poll_at,
        "b_at": poll.polled_at,
        "b_status": poll.status,
        "b_etag": poll.etag,
        "b_modified": poll.last_modified,
        "b_title": poll.title,
        "b_digest": poll.body_digest,
        "b_entries": poll.entries,
        "b_error": poll.error,
        "b_disable": poll.disable,
    }
