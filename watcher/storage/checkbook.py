"""The bookkeeping of unchanged checks, in batches (a mixin of
:class:`watcher.storage.store.Store`).

Most re-checks end "checked, unchanged" (a 304, or the same text again): all they write is
the article's counters, validators and next check time. Inside :meth:`batched_checks` those
writes wait in memory and go out as one executemany UPDATE and one commit per batch: when
the batch ends (a pass, a due batch, a drain), every ``FLUSH_EVERY`` checks, after
``FLUSH_SECONDS``, and when the process closes the store.

What a crash loses is at most the unflushed rows: those articles keep their old
``next_check_at``, so they are due again and simply re-checked after the restart. A check
is idempotent (the same page again is "unchanged" again), so nothing is lost but the work.
Outside a batch (a queue worker's single job, a one-off check) the row is written at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, update

from watcher.errors import StoreError
from watcher.records import CheckRecord
from watcher.storage.livepages import outcome_values
from watcher.storage.schema import ArticleRow

log = logging.getLogger(__name__)

_ARTICLE = ArticleRow.__table__  # type: ignore[attr-defined]
# Pending rows written in one statement; and the longest a pending row waits.
FLUSH_EVERY = 256
FLUSH_SECONDS = 2.0

# Prebuilt once: the whole write of an unchanged check, one parameter set per article.
_UNCHANGED = (
    update(_ARTICLE)
    .where(_ARTICLE.c.id == bindparam("b_id"))
    .values(
        checks=_ARTICLE.c.checks + 1,
        last_checked=bindparam("b_checked"),
        next_check_at=bindparam("b_next"),
        status=bindparam("b_status"),
        failures=0,
        last_error=None,
        etag=bindparam("b_etag"),
        last_modified=bindparam("b_modified"),
        gone_checks=0,  # a good answer ends a run of gone ones (see watcher.pipeline.takedown)
        # One more "same" outcome for the live-page judgement, as a single check writes it.
        **outcome_values("-"),
    )
)


def is_unchanged(check: CheckRecord) -> bool:
    """A check that writes only the article's bookkeeping: no version, revert, error, gone
    answer or event (a take-down, restore or move)."""
    return (
        check.version is None
        and check.seen_again is None
        and check.error is None
        and not check.gone
        and not check.events
    )


class BatchedChecks:
    """Unchanged checks kept for one write. Mixed into Store, which supplies the connections
    and calls :meth:`_init_batches` from its constructor."""

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _init_batches(self) -> None:
        self._pending: dict[int, dict[str, Any]] = {}
        self._batching = 0
        self._oldest = 0.0

    @contextmanager
    def batched_checks(self) -> Iterator[None]:
        """Hold unchanged checks for batch writes until this block (the last open one) ends."""
        self._batching += 1
        try:
            yield
        except BaseException:
            self.flush_checks_quietly()
            raise
        finally:
            self._batching -= 1
        self.flush_checks()

    def buffer_unchanged(self, article_id: int, check: CheckRecord) -> bool:
        """Keep an unchanged check for the next flush; False (not kept) outside a batch."""
        if not self._batching or not is_unchanged(check):
            return False
        if article_id in self._pending:
            # Written first: each check adds its own outcome to the article's recent ones.
            self.flush_checks()
        if not self._pending:
            self._oldest = time.monotonic()
        self._pending[article_id] = _parameters(article_id, check)
        if len(self._pending) >= FLUSH_EVERY or time.monotonic() - self._oldest > FLUSH_SECONDS:
            self.flush_checks()
        return True

    def flush_checks(self) -> int:
        """Write every pending unchanged check: one UPDATE, one commit. Returns how many."""
        if not self._pending:
            return 0
        rows = list(self._pending.values())
        # Taken off first: a failed write leaves them due, to be checked again (see above).
        self._pending.clear()
        with self._transaction() as connection:
            connection.execute(_UNCHANGED, rows)
        return len(rows)

    def _settle(self, article_id: int) -> None:
        """Before any other write to an article: its pending check goes first, so the later
        write is the one that stays."""
        if article_id in self._pending:
            self.flush_checks()

    def flush_checks_quietly(self) -> None:
        """Flush while an error unwinds or the process closes: a failing database must not
        hide the error under way (the rows left out are due again, see above)."""
        try:
            self.flush_checks()
        except StoreError as exc:
            log.warning("unchanged checks not recorded (they will be checked again): %s", exc)


def _parameters(article_id: int, check: CheckRecord) -> dict[str, Any]:
    next_check: datetime | None = check.next_check_at
    return {
        "b_id": article_id,
        "b_checked": check.checked_at,
        "b_next": next_check,
        "b_status": "tracking" if next_check is not None else "retired",
        "b_etag": check.etag,
        "b_modified": check.last_modified,
    }
