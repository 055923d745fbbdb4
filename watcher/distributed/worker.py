"""One ``watcher worker`` process: a Procrastinate worker running watcher's jobs with the
same :class:`~watcher.tasks.Context` as the daemon (:func:`~watcher.tasks.open_context`).

Life: register in the ``worker`` table (beat every third of ``queue.stalled_after``), run
Procrastinate's worker until SIGTERM/SIGINT, then finish the jobs under way for
DRAIN_SECONDS and hand back the rest (their retry puts them back in the queue), exit 0.
A database lost while running: the Procrastinate worker stops, and a new one starts once the
database answers again, trying after 1 s, 2 s, 4 s, ... at most MAX_BACKOFF (and from 1 s again
at the next outage); one log line when the outage starts and one when it ends. The jobs the
lost worker had under way are handed back by whichever worker runs ``recover`` next, once its
heartbeat is ``stalled_after`` old.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import procrastinate
import psycopg
import psycopg_pool
from procrastinate import exceptions as queue_errors
from procrastinate.worker import Worker

from watcher.clock import utc_now
from watcher.config.models import Config
from watcher.distributed.app import build_app, conninfo
from watcher.distributed.hostslots import SharedHostSlots
from watcher.distributed.runtime import CONTEXT_KEY, Runtime
from watcher.errors import StoreError
from watcher.storage.migrations import apply_queue_schema
from watcher.storage.store import Store
from watcher.tasks import Context, open_context

log = logging.getLogger(__name__)

# The jobs under way get this long to finish after SIGTERM, then are handed back.
DRAIN_SECONDS = 20.0
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 30.0
# How long one try to reach the database may take while it is away.
PROBE_SECONDS = 5
# A worker looks for jobs this often even without a NOTIFY (a missed notification, a job
# whose retry time came).
POLL_SECONDS = 1.0
# Registry rows of workers gone this long are dropped at start.
FORGET_AFTER = timedelta(days=7)
_OUTAGE_ERRORS = (
    psycopg.Error,
    psycopg_pool.PoolTimeout,
    queue_errors.ConnectorException,
    StoreError,
    OSError,
)

Started = Callable[[Context, Callable[[], bool]], None]


@dataclass
class WorkerOptions:
    concurrency: int = 10
    # Called once the context is open (the CLI attaches its metrics endpoint here), with a
    # function saying whether the Procrastinate worker is running.
    started: Started | None = None


async def run_worker(config: Config, store: Store, options: WorkerOptions) -> None:
    """Run until SIGTERM or SIGINT; the store is opened (and locked) by the caller."""
    store.furniture_cache_seconds = 0  # see FurnitureQueries.site_furniture
    with store.engine.begin() as connection:  # Procrastinate installed after the migration
        apply_queue_schema(connection)
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    now = utc_now()
    store.forget_workers(seen_before=now - FORGET_AFTER)
    host, pid = socket.gethostname(), os.getpid()
    store.register_worker(worker_id, host=host, pid=pid, concurrency=options.concurrency, now=now)
    lease = config.fetch.deadline * 2 + timedelta(seconds=10)
    slots = SharedHostSlots(store, config.fetch.per_host, worker_id, lease, utc_now)
    async with open_context(config, store, host_slots=slots, pool=False) as ctx:
        runtime = Runtime(ctx, build_app(config), worker_id)
        life = _Life(runtime, options)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, life.stop)
        loop.set_exception_handler(_unawaited_error)
        beat = asyncio.create_task(life.heartbeat())
        log.info("worker %s: started (concurrency %d)", worker_id, options.concurrency)
        try:
            if options.started is not None:
                options.started(ctx, life.running)
            await life.serve()
        finally:
            beat.cancel()
            with suppress(asyncio.CancelledError):
                await beat
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            loop.set_exception_handler(None)
            life.final_beat()
    done, failed = runtime.processed, runtime.failed
    log.info("worker %s: stopped after %d jobs (%d failed)", worker_id, done, failed)


class _Life:
    """The worker's run, its outages and its stop."""

    def __init__(self, runtime: Runtime, options: WorkerOptions) -> None:
        self.runtime = runtime
        self.options = options
        self.stopping = asyncio.Event()
        self.worker: Worker | None = None
        self.outage_since: float | None = None
        self.backoff = FIRST_BACKOFF

    def running(self) -> bool:
        return self.worker is not None and self.outage_since is None

    def stop(self) -> None:
        if self.stopping.is_set():
            return
        log.info("stopping: finishing the jobs under way (at most %.0f s)", DRAIN_SECONDS)
        self.stopping.set()
        self.runtime.ctx.stopping = True
        if self.worker is not None:
            self.worker.stop()  # type: ignore[no-untyped-call]

    async def serve(self) -> None:
        while not self.stopping.is_set():
            try:
                await self._run_once()
                if self.stopping.is_set():
                    return
                self.lost("the queue worker stopped (its database connection was lost)")
            except _OUTAGE_ERRORS as exc:
                if self.stopping.is_set():
                    return
                self.lost(_reason(exc))
            with suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.backoff)
            self.backoff = min(self.backoff * 2, MAX_BACKOFF)

    async def _run_once(self) -> None:
        """One Procrastinate worker, from connecting to its end. One plain connection is
        tried first: opening the pool would wait up to 30 s and then retry on its own
        schedule, where the back-off of :meth:`serve` should decide."""
        app = self.runtime.app
        url = self.runtime.ctx.config.database_url()
        probe = await psycopg.AsyncConnection.connect(conninfo(url), connect_timeout=PROBE_SECONDS)
        await probe.close()
        try:
            async with app.open_async():
                await app.job_manager.check_connection_async()
                await self._work(app)
        finally:
            await app.connector.close_async()  # a pool whose opening failed is still there

    async def _work(self, app: procrastinate.App) -> None:
        stalled = self.runtime.ctx.config.queue.stalled_after.total_seconds()
        self.worker = Worker(
            app,
            name=self.runtime.worker_id,
            concurrency=self.options.concurrency,
            install_signal_handlers=False,
            additional_context={CONTEXT_KEY: self.runtime},
            shutdown_graceful_timeout=DRAIN_SECONDS,
            update_heartbeat_interval=stalled / 3,
            stalled_worker_timeout=stalled,
            fetch_job_polling_interval=POLL_SECONDS,
            delete_jobs="successful",
        )
        self.back()
        self.backoff = FIRST_BACKOFF  # the next outage starts over at 1 s
        try:
            await self.worker.run()  # type: ignore[no-untyped-call]
        finally:
            self.worker = None

    def lost(self, reason: str) -> None:
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            log.error("database lost: %s; reconnecting with back-off", reason)

    def back(self) -> None:
        if self.outage_since is not None:
            seconds = time.monotonic() - self.outage_since
            log.warning("database back after %.0f s: taking jobs again", seconds)
            self.outage_since = None

    async def heartbeat(self) -> None:
        every = self.runtime.ctx.config.queue.stalled_after.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self._beat, False)
            except StoreError as exc:
                self.lost(str(exc))
                self._restart_queue_worker()

    def _restart_queue_worker(self) -> None:
        """The database went away under the Procrastinate worker: stop it, and :meth:`serve`
        starts a fresh one (a new pool) once the database answers. Left running, it would
        wait out the outage on its pool and find its dead connections one at a time after
        it, each time an outage of its own; the outage ends when the new one starts."""
        if self.worker is not None:
            self.worker.stop()  # type: ignore[no-untyped-call]

    def final_beat(self) -> None:
        with suppress(StoreError):
            self._beat(True)

    def _beat(self, stopped: bool) -> None:
        runtime = self.runtime
        runtime.ctx.store.worker_seen(
            runtime.worker_id,
            utc_now(),
            processed=runtime.processed,
            failed=runtime.failed,
            stopped=stopped,
        )


def _unawaited_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncio's handler for an error nobody awaited. When the database goes away while a
    job runs, Procrastinate's task of that job fails to record the job's end, and nobody
    awaits it: that is the outage already logged once, and the job, still under way in the
    queue, is handed back by ``recover``. Anything else goes to asyncio's own handler."""
    error = context.get("exception")
    if isinstance(error, queue_errors.ConnectorException):
        log.debug("%s: %s", context.get("message"), _reason(error))
        return
    loop.default_exception_handler(context)


def _reason(exc: BaseException) -> str:
    """The first line of what went wrong; Procrastinate's own errors say only "Database
    error.", the driver's error they wrap says which."""
    if isinstance(exc, queue_errors.ConnectorException) and exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
