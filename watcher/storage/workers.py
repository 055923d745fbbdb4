"""The queries of the scale-out mode (a mixin of :class:`watcher.storage.store.Store`): the
worker registry, claiming due work, and per-host request slots shared by every worker.

Everything a worker must agree on with the others lives here, in the database, never in a
process: which articles were handed out, which host slots are taken, who is alive.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import Connection, delete, func, or_, update
from sqlmodel import select

from watcher.storage.engine import dialect_insert
from watcher.storage.schema import ArticleRow, FeedRow, HostSlotRow, WorkerRow

_WORKER = WorkerRow.__table__  # type: ignore[attr-defined]
_SLOT = HostSlotRow.__table__  # type: ignore[attr-defined]
_ARTICLE = ArticleRow.__table__  # type: ignore[attr-defined]
_FEED = FeedRow.__table__  # type: ignore[attr-defined]


class WorkerQueries:
    """Mixed into Store, which supplies the transactions."""

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    # ------------------------------------------------------------- the registry

    def register_worker(
        self, worker_id: str, *, host: str, pid: int, concurrency: int, now: datetime
    ) -> None:
        with self._transaction() as connection:
            connection.execute(
                _WORKER.insert().values(
                    id=worker_id,
                    host=host,
                    pid=pid,
                    concurrency=concurrency,
                    started_at=now,
                    last_seen=now,
                    processed=0,
                    failed=0,
                )
            )

    def worker_seen(
        self, worker_id: str, now: datetime, *, processed: int, failed: int, stopped: bool = False
    ) -> None:
        """A worker's heartbeat, with its totals so far (and its end, with ``stopped``)."""
        values: dict[str, object] = {"last_seen": now, "processed": processed, "failed": failed}
        if stopped:
            values["stopped_at"] = now
        with self._transaction() as connection:
            connection.execute(update(_WORKER).where(_WORKER.c.id == worker_id).values(**values))

    def forget_workers(self, *, seen_before: datetime) -> int:
        """Drop the registry rows of workers gone since before ``seen_before``."""
        with self._transaction() as connection:
            result = connection.execute(delete(_WORKER).where(_WORKER.c.last_seen < seen_before))
            return result.rowcount or 0

    # ------------------------------------------------------------ due work

    def due_feed_names(self, now: datetime, names: Collection[str]) -> list[str]:
        """Configured feeds whose poll is due (never polled, or ``next_poll_at`` passed),
        leaving out those disabled by a 410."""
        with self._transaction() as connection:
            return list(
                connection.execute(
                    select(_FEED.c.name)
                    .where(
                        _FEED.c.name.in_(list(names)),
                        _FEED.c.disabled_at.is_(None),
                        or_(_FEED.c.next_poll_at.is_(None), _FEED.c.next_poll_at <= now),
                    )
                    .order_by(_FEED.c.next_poll_at, _FEED.c.name)
                ).scalars()
            )

    def claim_due_articles(self, now: datetime, *, limit: int, until: datetime) -> list[int]:
        """Hand out up to ``limit`` due articles, oldest due first: each one's
        ``next_check_at`` moves to ``until`` in the same statement that picks it, so two
        claims never hand out one article. The check then sets the real next time; should
        its job be lost before it runs, the article is due again at ``until``."""
        if limit <= 0:
            return []
        due = (
            select(_ARTICLE.c.id)
            .where(_ARTICLE.c.status == "tracking", _ARTICLE.c.next_check_at <= now)
            .order_by(_ARTICLE.c.next_check_at, _ARTICLE.c.id)
            .limit(limit)
        )
        with self._transaction() as connection:
            if connection.dialect.name == "postgresql":
                # Two schedulers at once (a poll's follow-up beside the periodic tick) skip
                # each other's rows instead of queueing behind them.
                due = due.with_for_update(skip_locked=True)
            claimed = connection.execute(
                update(_ARTICLE)
                .where(_ARTICLE.c.id.in_(due.scalar_subquery()), _ARTICLE.c.next_check_at <= now)
                .values(next_check_at=until)
                .returning(_ARTICLE.c.id)
            ).scalars()
            return sorted(int(i) for i in claimed)

    # ------------------------------------------------------------ host slots

    def take_host_slot(
        self, host: str, per_host: int, holder: str, now: datetime, *, expires: datetime
    ) -> int | None:
        """Take a free slot of ``host`` (one of ``per_host``) for ``holder``; None when all
        are taken. A slot past its ``expires_at`` is free: its holder died holding it."""
        with self._transaction() as connection:
            insert = dialect_insert(connection.dialect.name)
            first = random.randrange(per_host)  # spread the takers over the slots
            for offset in range(per_host):
                slot = (first + offset) % per_host
                statement = insert(_SLOT).values(
                    host=host, slot=slot, holder=holder, expires_at=expires
                )
                taken = connection.execute(
                    statement.on_conflict_do_update(
                        index_elements=[_SLOT.c.host, _SLOT.c.slot],
                        set_={"holder": holder, "expires_at": expires},
                        where=_SLOT.c.expires_at < now,
                    ).returning(_SLOT.c.slot)
                ).scalar()
                if taken is not None:
                    return int(taken)
        return None

    def release_host_slot(self, host: str, slot: int, holder: str) -> None:
        with self._transaction() as connection:
            connection.execute(
                delete(_SLOT).where(
                    _SLOT.c.host == host, _SLOT.c.slot == slot, _SLOT.c.holder == holder
                )
            )

    def busy_host_slots(self) -> int:
        with self._transaction() as connection:
            return int(connection.execute(select(func.count()).select_from(_SLOT)).scalar() or 0)
