"""What a task reports: one poll, one check, one whole pass (for the CLI, the metrics and
the scheduler's follow-up jobs)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

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
    next_poll: datetime | None = None  # for a skipped feed: when its back-off ends


@dataclass(frozen=True)
class CheckOutcome:
    article_id: int
    url: str
    status: str  # new | changed | unchanged | seen_again | failed | removed
    version: int | None = None
    alerts: int = 0
    error: str | None = None
    retired: bool = False
    # Why the feed's text was stored instead of the page's (see FALLBACKS), if it was.
    fallback: str | None = None
    events: tuple[str, ...] = ()  # removed, restored, moved (see watcher.pipeline.takedown)


# What a fallback to the feed's text means, for the pass summary.
FALLBACKS = {
    "refused": "links refused by the private-network guard",
    "fetch": "pages could not be fetched",
    "extract": "no article text could be extracted from the pages",
}


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

    def event_counts(self) -> Counter[str]:
        """Take-downs, restores and moves the checks found."""
        return Counter(event for check in self.checks for event in check.events)

    @property
    def alerts(self) -> int:
        return sum(check.alerts for check in self.checks)

    def fallbacks(self) -> Counter[str]:
        """Checks that stored the feed's text instead of the page's, by reason."""
        return Counter(check.fallback for check in self.checks if check.fallback)

    @property
    def problems(self) -> bool:
        """Some feed failed (or is backing off after failing) or some check failed: what
        makes `watcher check` exit 1."""
        statuses = {poll.status for poll in self.polls}
        return bool(statuses & {"failed", "skipped", "disabled"}) or any(
            check.status == "failed" for check in self.checks
        )


def error_text(exc: Exception) -> str:
    """What a failed poll or check records: watcher's own errors say what went wrong;
    anything else is a bug, named with its type (a bare KeyError says nothing)."""
    if isinstance(exc, WatcherError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"
