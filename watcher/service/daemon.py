"""Process life of ``watcher run``: open everything once, schedule, stop cleanly on a signal.

On SIGTERM or SIGINT the scheduler stops taking work; jobs already running get
``DRAIN_SECONDS`` to finish and are then cancelled. Every write is one transaction, so a
cancelled check leaves no half-written rows: it is simply done again after the restart.
The same holds for SIGKILL or a power cut (``tests/test_crash.py`` kills it at random).

Before anything else the daemon takes the database's writer lock (:mod:`watcher.service.lock`) and
holds it for its life: a second ``watcher run`` or a ``watcher check`` on the same database
refuses to start, naming this process.

Under systemd (``systemd/watcher.service``, :mod:`watcher.service.sdnotify`) the daemon says READY=1
once the scheduler runs, keeps STATUS= up to date with the database's counts, pings the
watchdog while the scheduler runs (also while draining) and says STOPPING=1 on a stop signal.

Every ``CHECK_SECONDS`` (2 s) it makes sure its database is still the one it opened
(:mod:`watcher.storage.presence`): a SQLite file deleted or replaced, a PostgreSQL database, schema
or table dropped, or a server unreachable for more than ``UNREACHABLE_SECONDS`` stops it
like SIGTERM, without the drain, and it exits 1 with one line naming the database, so that
systemd's ``Restart=on-failure`` starts it again on a database that is really there.

With ``metrics.listen`` set it serves ``/metrics`` and ``/healthz`` (:mod:`watcher.metrics`)
until the stop signal, bound before anything else: a busy port stops it having touched nothing.
With ``web.listen`` set it serves the web view there too (:mod:`watcher.service.webview`),
``/metrics`` and ``/healthz`` included.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Collection
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from watcher.config.loading import load_config
from watcher.config.models import Config
from watcher.errors import DatabaseGone, WatcherError
from watcher.service.exporter import Exporter, serve_metrics
from watcher.service.lock import writer_store
from watcher.service.scheduler import build_scheduler, sync_feed_jobs
from watcher.service.sdnotify import (
    SystemdNotifier,
    status_reporter,
    watchdog_interval,
    watchdog_pinger,
)
from watcher.service.webview import WebView, serve_web
from watcher.storage.presence import DatabaseWatch, take_anchor, watch_database
from watcher.storage.store import Store
from watcher.tasks import Context, open_context, reconfigure

log = logging.getLogger(__name__)

DRAIN_SECONDS = 20.0
# How often systemd's STATUS= line is refreshed: the counts are four COUNT(*) queries on the
# event loop, cheap at this pace but not at every watchdog ping.
STATUS_SECONDS = 30.0
# Jobs under way when the database was lost are cancelled at once.
LOST_DRAIN_SECONDS = 0.0


@dataclass(frozen=True)
class RunOptions:
    drain_seconds: float = DRAIN_SECONDS
    # SIGHUP reloads the config of a service; an interactive run (the demo) stops on it
    # instead, since that is what a closed terminal sends.
    hangup_stops: bool = False


async def run_daemon(config: Config, options: RunOptions = RunOptions()) -> None:
    stop, reload = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _request_stop, stop, signum)
    if options.hangup_stops:
        loop.add_signal_handler(signal.SIGHUP, _request_stop, stop, signal.SIGHUP)
    else:
        loop.add_signal_handler(signal.SIGHUP, reload.set)
    try:
        async with serve_metrics(config) as exporter, serve_web(config, exporter) as web:
            with writer_store(config.database_url(), "run") as store:
                await _serve(config, store, _Signals(stop, reload), options, (exporter, web))
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)


@dataclass(frozen=True)
class _Signals:
    stop: asyncio.Event
    reload: asyncio.Event  # SIGHUP: read the config file again


async def _serve(
    config: Config,
    store: Store,
    signals: _Signals,
    options: RunOptions,
    endpoints: tuple[Exporter, WebView],
) -> None:
    exporter, web = endpoints
    watch = DatabaseWatch(take_anchor(config.database_url(), store.engine), config.database_url())
    async with open_context(config, store) as ctx:
        scheduler = build_scheduler(ctx)
        exporter.attach(ctx.store, lambda: scheduler.running, lambda: ctx.config)
        await web.start()  # the schema exists now: the view's read-only store can open it
        scheduler.start()
        log.info(
            "watching %d feeds with %d rules; database %s",
            len(config.feeds),
            len(config.rules),
            ctx.store.label,
        )
        notifier = SystemdNotifier.from_environment()
        status, pinger = _ready(notifier, ctx.store, scheduler)
        # A lost database stops the daemon the way SIGTERM does (and then exits non-zero).
        watching = asyncio.create_task(watch_database(watch))
        watching.add_done_callback(lambda _: signals.stop.set())
        try:
            await _until_stopped(ctx, scheduler, notifier, signals)
            lost = _loss(watching)
            ctx.stopping = True  # batches under way finish their current items only
            await _cancel(status, watching)
            await exporter.stop()  # now: the drain below waits for every task, its own too
            await web.stop()
            notifier.stopping(
                f"stopping: {lost}" if lost else "stopping: finishing the work under way"
            )
            # Pause, drain, then shut down: APScheduler's asyncio executor cancels every
            # running job on shutdown, which would break "finish the work under way".
            scheduler.pause()
            # Nothing is worth finishing into a lost database: nobody will read it.
            drain = LOST_DRAIN_SECONDS if lost else options.drain_seconds
            await _drain(drain, keep=[pinger] if pinger else [])
            scheduler.shutdown(wait=False)
        finally:
            await _cancel(status, pinger, watching)
        if lost is not None:
            raise lost  # its counts are nowhere: say so instead of logging them
        counts = ctx.store.counts()
        shown = ", ".join(f"{n} {name if n != 1 else name[:-1]}" for name, n in counts.items())
        log.info("stopped; database: %s", shown)


def _loss(watching: asyncio.Task[DatabaseGone]) -> DatabaseGone | None:
    """The loss the database watch found, if that is what ended the serving."""
    return watching.result() if watching.done() and not watching.cancelled() else None


async def _until_stopped(
    ctx: Context, scheduler: AsyncIOScheduler, notifier: SystemdNotifier, signals: _Signals
) -> None:
    """Serve, reloading the config on each SIGHUP, until a stop signal."""
    while not signals.stop.is_set():
        waiters = [asyncio.create_task(event.wait()) for event in (signals.stop, signals.reload)]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        await _cancel(*waiters)
        if signals.reload.is_set() and not signals.stop.is_set():
            signals.reload.clear()
            notifier.reloading("reloading the config")
            reload_config(ctx, scheduler)
            notifier.ready("config reloaded")


def reload_config(ctx: Context, scheduler: AsyncIOScheduler) -> bool:
    """Read the config file again and apply it; a bad one is refused and the old one kept."""
    source = ctx.config.source
    try:
        new = load_config(Path(source))
        reconfigure(ctx, new)
    except WatcherError as exc:
        log.error(
            "SIGHUP: config not reloaded, keeping the running one: %s", ctx.config.mask(str(exc))
        )
        return False
    changes = sync_feed_jobs(scheduler, ctx)
    log.info(
        "SIGHUP: config reloaded from %s: %d feeds (%s added, %s removed, %s changed), "
        "%d rules, %d notifiers",
        source,
        len(new.feeds),
        ", ".join(changes.added) or "none",
        ", ".join(changes.removed) or "none",
        ", ".join(changes.changed) or "none",
        len(new.rules),
        len(new.notifiers),
    )
    return True


def _request_stop(stop: asyncio.Event, signum: int) -> None:
    log.info("%s received: finishing the work under way", signal.Signals(signum).name)
    stop.set()


def _status_line(store: Store) -> str:
    counts = store.counts()
    return ", ".join(
        f"{counts[name]} {name}" for name in ("feeds", "articles", "versions", "alerts")
    )


def _ready(
    notifier: SystemdNotifier, store: Store, scheduler: AsyncIOScheduler
) -> tuple[asyncio.Task[None] | None, asyncio.Task[None] | None]:
    """Tell systemd we are ready, then start the tasks that keep it informed: STATUS= every
    STATUS_SECONDS and, if systemd asked for one, the watchdog pinger."""
    if not notifier.enabled:
        return None, None  # not under systemd: no counts queried for nobody
    describe = partial(_status_line, store)
    notifier.ready(describe())
    status = asyncio.create_task(status_reporter(notifier, STATUS_SECONDS, describe))
    interval = watchdog_interval()
    if interval is None:
        return status, None
    # Alive means the scheduler runs (paused counts: that is the drain); a blocked event
    # loop sends no pings all by itself.
    pinger = watchdog_pinger(notifier, interval, lambda: scheduler.running)
    return status, asyncio.create_task(pinger)


async def _cancel(*tasks: asyncio.Task[Any] | None) -> None:
    running = [task for task in tasks if task is not None and not task.done()]
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)


async def _drain(seconds: float, keep: Collection[asyncio.Task[None]] = ()) -> None:
    """Let running jobs finish for up to ``seconds``, then cancel the rest; ``keep`` are
    helper tasks that run until the end, not jobs to wait for."""
    current = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not current and task not in keep]
    if not others:
        return
    _, pending = await asyncio.wait(others, timeout=seconds)
    for task in pending:
        task.cancel()
    if pending:
        log.warning("cancelled %d jobs still running after %.0f s", len(pending), seconds)
        await asyncio.gather(*pending, return_exceptions=True)
