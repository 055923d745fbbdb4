"""Prometheus metrics of ``watcher run``: what the tasks and the outbox record.

A leaf: anything may record here; :mod:`watcher.service.exporter` serves them.

**One module, one registry per daemon.** Every metric is defined in :class:`Metrics`, on a
``CollectorRegistry`` of its own, never prometheus_client's global one: two ``Metrics`` never
collide, and a test reads only what it recorded. The tasks record through module functions
(:func:`poll_done`, :func:`check_done`, :func:`delivery_done`, :func:`set_backlog`) into the
*active* ``Metrics``, so no metrics object has to be threaded through the Context, the outbox
and the scheduler. The daemon activates a fresh one for its life (:func:`serve_metrics`);
tests activate their own with :func:`use`; without either, recordings go to a process-wide
instance nobody serves, which is harmless. A recording is a dict lookup and an addition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import choose_encoder

log = logging.getLogger(__name__)

# From a 1 ms 304 on loopback to a feed or page at the 60 s fetch deadline.
DURATION_BUCKETS = (
    *(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
    *(1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0),
)
POLL_OUTCOMES = ("ok", "not_modified", "failed", "skipped", "disabled")
CHECK_OUTCOMES = ("new", "changed", "unchanged", "seen_again", "failed", "removed")
DELIVERY_STATES = ("sent", "retrying", "gave_up")
_SUCCESS = frozenset({"ok", "not_modified"})
_NO_REQUEST = frozenset({"skipped", "disabled"})  # nothing was fetched: nothing to time
_STORED = frozenset({"new", "changed"})  # the check outcomes that store a version


class Metrics:
    """Every metric of one daemon, on its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._declare_polls(self.registry)
        self._declare_checks(self.registry)
        self._declare_states(self.registry)
        # Memory, CPU and open files: what a daemon running for months slowly leaks.
        ProcessCollector(registry=self.registry)
        # Plain copies of what /healthz needs (reading a gauge back is not public API).
        self.last_success: float | None = None
        self.backlog: dict[str, int] = {}

    def _declare_polls(self, r: CollectorRegistry) -> None:
        self.polls = Counter(
            "watcher_feed_polls", "Feed polls by outcome.", ["feed", "outcome"], registry=r
        )
        self.not_modified = Counter(
            "watcher_feed_not_modified", "Feed polls answered 304.", ["feed"], registry=r
        )
        self.poll_errors = Counter(
            "watcher_feed_poll_errors",
            "Failed feed polls by HTTP status (none: no answer).",
            ["feed", "code"],
            registry=r,
        )
        self.poll_seconds = Histogram(
            "watcher_feed_poll_duration_seconds",
            "Time to poll one feed.",
            buckets=DURATION_BUCKETS,
            registry=r,
        )

    def _declare_checks(self, r: CollectorRegistry) -> None:
        self.checks = Counter(
            "watcher_article_checks", "Article checks by outcome.", ["outcome"], registry=r
        )
        for outcome in CHECK_OUTCOMES:
            self.checks.labels(outcome)
        self.check_seconds = Histogram(
            "watcher_article_check_duration_seconds",
            "Time to check one article.",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.versions = Counter("watcher_versions_stored", "Article versions stored.", registry=r)
        self.alerts = Counter("watcher_alerts_recorded", "Alerts recorded.", registry=r)

    def _declare_states(self, r: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "watcher_deliveries",
            "Alert deliveries by notifier and outcome.",
            ["notifier", "state"],
            registry=r,
        )
        self.backlog_gauge = Gauge(
            "watcher_outbox_backlog",
            "Alerts not routed yet (new) and deliveries by state.",
            ["state"],
            registry=r,
        )
        self.last_success_gauge = Gauge(
            "watcher_last_successful_poll_timestamp_seconds",
            "Unix time of the last successful feed poll (0: none known).",
            registry=r,
        )
        self.scheduler_gauge = Gauge(
            "watcher_scheduler_running", "1 while the scheduler runs.", registry=r
        )

    def declare(self, feeds: Iterable[str], notifiers: Iterable[str]) -> None:
        """Create every series of the configured feeds and notifiers at zero, so a rate over
        ``outcome="failed"`` exists before the first failure."""
        for feed in feeds:
            for outcome in POLL_OUTCOMES:
                self.polls.labels(feed, outcome)
        for notifier in notifiers:
            for state in DELIVERY_STATES:
                self.deliveries.labels(notifier, state)

    def poll_done(self, feed: str, outcome: str, seconds: float, http_status: int | None) -> None:
        self.polls.labels(feed, outcome).inc()
        if outcome in _NO_REQUEST:
            return
        self.poll_seconds.observe(seconds)
        if http_status == 304:
            self.not_modified.labels(feed).inc()
        if outcome in _SUCCESS:
            self.note_success(time.time())
        elif outcome == "failed":
            self.poll_errors.labels(feed, str(http_status or "none")).inc()

    def check_done(self, outcome: str, seconds: float, alerts: int) -> None:
        self.checks.labels(outcome).inc()
        self.check_seconds.observe(seconds)
        if outcome in _STORED:
            self.versions.inc()
        if alerts > 0:
            self.alerts.inc(alerts)

    def delivery_done(self, notifier: str, state: str, count: int = 1) -> None:
        if count > 0:  # a counter refuses to go down
            self.deliveries.labels(notifier, state).inc(count)

    def set_backlog(self, counts: Mapping[str, int]) -> None:
        # A state that emptied since the last call reads 0, not its old value.
        for state in self.backlog.keys() | counts.keys():
            self.backlog_gauge.labels(state).set(counts.get(state, 0))
        self.backlog = dict(counts)

    def set_scheduler_running(self, running: bool) -> None:
        self.scheduler_gauge.set(1 if running else 0)

    def note_success(self, unix_time: float) -> None:
        if self.last_success is None or unix_time > self.last_success:
            self.last_success = unix_time
            self.last_success_gauge.set(unix_time)

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The metrics in the format ``accept`` asks for (Prometheus text by default)."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


_active = Metrics()


def active() -> Metrics:
    return _active


def _swap(metrics: Metrics) -> Metrics:
    """Make ``metrics`` the active one; returns the one it replaces."""
    global _active
    previous, _active = _active, metrics
    return previous


@contextmanager
def use(metrics: Metrics) -> Iterator[Metrics]:
    """Record into ``metrics`` until the block ends."""
    previous = _swap(metrics)
    try:
        yield metrics
    finally:
        _swap(previous)


def poll_done(feed: str, outcome: str, seconds: float, http_status: int | None) -> None:
    """One feed poll ended: ``outcome`` is one of POLL_OUTCOMES."""
    _active.poll_done(feed, outcome, seconds, http_status)


def check_done(outcome: str, seconds: float, alerts: int) -> None:
    """One article check ended: ``outcome`` is one of CHECK_OUTCOMES."""
    _active.check_done(outcome, seconds, alerts)


def delivery_done(notifier: str, state: str, count: int = 1) -> None:
    """``count`` deliveries to ``notifier`` ended ``state`` (sent, retrying, gave_up)."""
    _active.delivery_done(notifier, state, count)


def set_backlog(counts: Mapping[str, int]) -> None:
    """The outbox now holds this: the dict of ``Store.outbox_backlog()``."""
    _active.set_backlog(counts)
