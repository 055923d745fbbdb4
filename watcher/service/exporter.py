"""The endpoint serving the metrics of :mod:`watcher.metrics` (``/metrics``) and the
daemon's health (``/healthz``).

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
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from watcher.errors import MetricsError, StoreError
from watcher.metrics import Metrics, use

if TYPE_CHECKING:
    from watcher.config.models import Config
    from watcher.config.values import ListenAddress
    from watcher.storage.store import Store

log = logging.getLogger(__name__)

STALE_FACTOR = 3.0
BACKLOG_SECONDS = 15.0  # the backlog is a few COUNT(*) queries on the loop: not per scrape
REQUEST_SECONDS = 5.0
MAX_REQUEST_HEAD = 16 * 1024


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
        # True when the web view answers /metrics and /healthz (watcher.service.webview).
        self.served_elsewhere = False
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
        if self._server is None and not self.served_elsewhere:
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

    def scrape(self, accept: str) -> tuple[bytes, str]:
        """The exposition for a scrape (the format ``accept`` asks for) and its type."""
        self.metrics.set_scheduler_running(self.alive())
        return self.metrics.exposition(accept)

    def _route(self, path: str, accept: str) -> tuple[HTTPStatus, bytes, str]:
        if path == "/metrics":
            body, content_type = self.scrape(accept)
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
