"""Prometheus metrics of ``watcher run``, and the endpoint serving them (``/metrics``,
``/healthz``).

**One module, one registry per daemon.** Every metric is defined in :class:`Metrics`, on a
``CollectorRegistry`` of its own, never prometheus_client's global one: two ``Metrics`` never
collide, and a test reads only what it recorded. The tasks record through module functions
(:func:`poll_done`, :func:`check_done`, :func:`delivery_done`, :func:`set_backlog`) into the
*active* ``Metrics``, so no metrics object has to be threaded through the Context, the outbox
and the scheduler. The daemon activates a fresh one for its life (:func:`serve_metrics`);
tests activate their own with :func:`use`; without either, recordings go to a process-wide
instance nobody serves, which is harmless. A recording is a dict lookup and an addition.

**The endpoint runs in the daemon's event loop** (``asyncio.start_server``), not on
prometheus_client's WSGI server thread. ``/healthz`` must tell whether the *daemon* is alive:
a thread would answer 200 while the loop is stuck in a blocking call, whereas a stuck loop
answers nothing here and the prober's timeout says so. It also reads the scheduler and the
backlog without locks, closes with the loop on SIGTERM (before the drain, which waits for
every task), and adds no thread beside the database writer. A scrape costs the loop well
under a millisecond. The HTTP spoken is the minimum: GET and HEAD, one request per
connection, a request head of at most 16 KiB that must arrive within 5 s.

**The health rule.** ``/healthz`` answers 200 when the scheduler runs and a feed poll
succeeded (``ok`` or ``not_modified``) within ``STALE_FACTOR`` (3) times the longest feed
interval, counted from start-up while this process has had no success yet (a fresh daemon
gets that long for its first); otherwise 503, with the reasons in ``problems``. Without
feeds only the scheduler counts. The body also gives the outbox backlog, for information:
a growing backlog is a delivery problem, not a dead daemon.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import choose_encoder

from watcher.errors import MetricsError, StoreError

if TYPE_CHECKING:
    from watcher.config import Config
    from watcher.config_values import ListenAddress
    from watcher.store import Store

log = logging.getLogger(__name__)

# From a 1 ms 304 on loopback to a feed or page at the 60 s fetch deadline.
DURATION_BUCKETS = (
    *(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
    *(1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0),
)
POLL_OUTCOMES = ("ok", "not_modified", "failed", "skipped", "disabled")
CHECK_OUTCOMES = ("new", "changed", "unchanged", "seen_again", "failed")
DELIVERY_STATES = ("sent", "retrying", "gave_up")
_SUCCESS = frozenset({"ok", "not_modified"})
_NO_REQUEST = frozenset({"skipped", "disabled"})  # nothing was fetched: nothing to time
_STORED = frozenset({"new", "changed"})  # the check outcomes that store a version

STALE_FACTOR = 3.0
BACKLOG_SECONDS = 15.0  # the backlog is a few COUNT(*) queries on the loop: not per scrape
REQUEST_SECONDS = 5.0
MAX_REQUEST_HEAD = 16 * 1024


class Metrics:
    """Every metric of one daemon, on its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
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
        self.checks = Counter(
            "watcher_article_checks", "Article checks by outcome.", ["outcome"], registry=r
        )
        self.versions = Counter("watcher_versions_stored", "Article versions stored.", registry=r)
        self.alerts = Counter("watcher_alerts_recorded", "Alerts recorded.", registry=r)
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
        self.poll_seconds = Histogram(
            "watcher_feed_poll_duration_seconds",
            "Time to poll one feed.",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.check_seconds = Histogram(
            "watcher_article_check_duration_seconds",
            "Time to check one article.",
            buckets=DURATION_BUCKETS,
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
        # Memory, CPU and open files: what a daemon running for months slowly leaks.
        ProcessCollector(registry=r)
        for outcome in CHECK_OUTCOMES:
            self.checks.labels(outcome)
        # Plain copies of what /healthz needs (reading a gauge back is not public API).
        self.last_success: float | None = None
        self.backlog: dict[str, int] = {}

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


# ------------------------------------------------------------------------------ health


@dataclass(frozen=True)
class Health:
    healthy: bool
    body: dict[str, Any]

    @property
    def status(self) -> int:
        return 200 if self.healthy else 503


def assess(
    *,
    now: float,
    started: float,
    running: bool,
    last_success: float | None,
    stale_after: float | None,
    backlog: Mapping[str, int],
) -> Health:
    """The health rule of the module docstring; times are unix seconds."""
    problems = []
    if not running:
        problems.append("the scheduler is not running")
    since = max(started, last_success or started)
    if stale_after is not None and now - since > stale_after:
        problems.append(f"no feed poll succeeded for {now - since:.0f} s")
    body = {
        "healthy": not problems,
        "problems": problems,
        "scheduler_running": running,
        "last_successful_poll_age_seconds": None if last_success is None else now - last_success,
        "stale_after_seconds": stale_after,
        "outbox_backlog": dict(backlog),
    }
    return Health(not problems, body)


def stale_limit(config: Config) -> float | None:
    """STALE_FACTOR times the longest feed interval; None without feeds."""
    intervals = [config.settings_for(feed).interval.total_seconds() for feed in config.feeds]
    return STALE_FACTOR * max(intervals) if intervals else None


# ---------------------------------------------------------------------------- the endpoint


class Exporter:
    """Serves ``/metrics`` and ``/healthz`` of ``metrics`` on one address, in this loop.

    Bound first (:meth:`listen`), then given the daemon's parts (:meth:`attach`): until
    then the scheduler counts as not running."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.started = time.time()
        self.alive: Callable[[], bool] = lambda: False
        self.config: Callable[[], Config | None] = lambda: None  # follows SIGHUP reloads
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def listen(self, address: ListenAddress) -> None:
        where = str(address)
        try:
            self._server = await asyncio.start_server(
                self._connection, address.host, address.port, limit=MAX_REQUEST_HEAD
            )
        except OSError as exc:
            reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            raise MetricsError(f"cannot listen on {where}: {reason}") from None
        log.info("metrics: /metrics and /healthz on http://%s", where)

    def attach(self, store: Store, alive: Callable[[], bool], config: Callable[[], Config]) -> None:
        """The daemon's store, whether its scheduler runs, and its current config."""
        self.alive, self.config = alive, config
        if self._server is None:
            return  # not served: no queries for nobody
        past = [s.last_success_at for s in store.feed_states() if s.last_success_at is not None]
        if past:  # the gauge and /healthz tell the truth from the start, also after a restart
            self.metrics.note_success(max(past).timestamp())
        self._spawn(self._refresh_backlog(store))

    async def stop(self) -> None:
        """Stop listening, drop open connections, end the backlog refresher. Idempotent."""
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def health(self) -> Health:
        config = self.config()
        return assess(
            now=time.time(),
            started=self.started,
            running=self.alive(),
            last_success=self.metrics.last_success,
            stale_after=stale_limit(config) if config is not None else None,
            backlog=self.metrics.backlog,
        )

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh_backlog(self, store: Store) -> None:
        while True:
            self.metrics.set_scheduler_running(self.alive())
            try:
                self.metrics.set_backlog(store.outbox_backlog())
            except StoreError as exc:  # reported, never fatal: the work matters more
                log.warning("metrics: cannot read the outbox backlog: %s", exc)
            await asyncio.sleep(BACKLOG_SECONDS)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:  # so that stop() can end a slow client's connection
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            async with asyncio.timeout(REQUEST_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
                writer.write(self._respond(head))
                await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away or dawdled: nothing to answer
        except asyncio.LimitOverrunError:
            writer.write(_reply(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, b"too large\n"))
        except Exception:  # a bug here must cost one answer, never the daemon
            log.exception("metrics: request failed")
            writer.write(_reply(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error\n"))
        finally:
            writer.close()
            with suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), REQUEST_SECONDS)

    def _respond(self, head: bytes) -> bytes:
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return _reply(HTTPStatus.BAD_REQUEST, b"bad request\n")
        method, target = parts[0], parts[1].split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return _reply(HTTPStatus.METHOD_NOT_ALLOWED, b"GET or HEAD\n", allow="GET, HEAD")
        status, body, content_type = self._route(target, _header(header_lines, "accept"))
        return _reply(status, body, content_type=content_type, with_body=method == "GET")

    def _route(self, path: str, accept: str) -> tuple[HTTPStatus, bytes, str]:
        if path == "/metrics":
            self.metrics.set_scheduler_running(self.alive())
            body, content_type = self.metrics.exposition(accept)
            return HTTPStatus.OK, body, content_type
        if path == "/healthz":
            health = self.health()
            body = json.dumps(health.body, indent=2).encode() + b"\n"
            return HTTPStatus(health.status), body, "application/json"
        return HTTPStatus.NOT_FOUND, b"watcher serves /metrics and /healthz\n", "text/plain"


def _header(lines: list[str], name: str) -> str:
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return ""


def _reply(
    status: HTTPStatus,
    body: bytes,
    *,
    content_type: str = "text/plain; charset=utf-8",
    with_body: bool = True,
    allow: str | None = None,
) -> bytes:
    headers = [
        f"HTTP/1.1 {status.value} {status.phrase}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    if allow:
        headers.append(f"Allow: {allow}")
    return "\r\n".join([*headers, "", ""]).encode("latin-1") + (body if with_body else b"")


@asynccontextmanager
async def serve_metrics(config: Config) -> AsyncIterator[Exporter]:
    """Fresh metrics, active for the block, served when ``metrics.listen`` is set.

    Bound here, before the daemon opens its database: a busy port stops it first thing
    (MetricsError), having touched nothing. Everything is undone when the block ends."""
    exporter = Exporter(Metrics())
    exporter.metrics.declare((feed.name for feed in config.feeds), config.notifiers)
    with use(exporter.metrics):
        try:
            if config.metrics is not None:
                await exporter.listen(config.metrics.listen)
            yield exporter
        finally:
            await exporter.stop()
