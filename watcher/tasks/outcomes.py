"""What a task reports: one poll, one check, one whole pass (for the CLI, the metrics and
the scheduler's follow-up jobs)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from watcher.delivery.outbox import DispatchSummary
from watcher.errors import (
    WatcherError,
)

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class PollOutcome:
    feed: str
    status: str  # ok | not_modified | failed | skipped (backing off) | disabled (410 Gone)
    entries: int = 0
    new_articles: int = 0
    error: str | None = None
    warning: str | None = None
    http_status: int | None = None


@dataclass(frozen=True)
class CheckOutcome:
    article_id: int
    url: str
    status: str  # new | changed | unchanged | seen_again | failed
    version: int | None = None
    alerts: int = 0
    error: str | None = None
    retired: bool = False


@dataclass
class PassSummary:
    polls: list[PollOutcome] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    delivery: DispatchSummary = field(default_factory=DispatchSummary)
    health: list[str] = field(default_factory=list)  # feed problems that started or healed

    @property
    def feeds_polled(self) -> int:
        return len(self.polls)

    def poll_counts(self) -> Counter[str]:
        return Counter(poll.status for poll in self.polls)

    def check_counts(self) -> Counter[str]:
        return Counter(check.status for check in self.checks)

    @property
    def alerts(self) -> int:
        return sum(check.alerts for check in self.checks)


def error_text(exc: Exception) -> str:
    """What a failed poll or check records: watcher's own errors say what went wrong;
    anything else is a bug, named with its type (a bare KeyError says nothing)."""
    if isinstance(exc, WatcherError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"
