"""Process life of ``watcher run``: open everything once, schedule, stop cleanly on a signal.

On SIGTERM or SIGINT the scheduler stops taking work; jobs already running get
``DRAIN_SECONDS`` to finish and are then cancelled. Every write is one transaction, so a
cancelled check leaves no half-written rows: it is simply done again after the restart.
The same holds for SIGKILL or a power cut (``tests/test_crash.py`` kills it at random).

Before anything else the daemon takes the database's writer lock (:mod:`watcher.lock`) and
holds it for its life: a second ``watcher run`` or a ``watcher check`` on the same database
refuses to start, naming this process.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from watcher.config import Config
from watcher.lock import writer_store
from watcher.scheduler import build_scheduler
from watcher.store import Store
from watcher.tasks import open_context

log = logging.getLogger(__name__)

DRAIN_SECONDS = 20.0


@dataclass(frozen=True)
class RunOptions:
    drain_seconds: float = DRAIN_SECONDS


async def run_daemon(config: Config, options: RunOptions = RunOptions()) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _request_stop, stop, signum)
    try:
        with writer_store(config.database_url(), "run") as store:
            await _serve(config, store, stop, options)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def _serve(config: Config, store: Store, stop: asyncio.Event, options: RunOptions) -> None:
    async with open_context(config, store) as ctx:
        scheduler = build_scheduler(ctx)
        scheduler.start()
        log.info(
            "watching %d feeds with %d rules; database %s",
            len(config.feeds),
            len(config.rules),
            ctx.store.label,
        )
        await stop.wait()
        # Pause, drain, then shut down: APScheduler's asyncio executor cancels every running
        # job on shutdown, which would break "finish the work under way".
        scheduler.pause()
        await _drain(options.drain_seconds)
        scheduler.shutdown(wait=False)
        log.info("stopped; database %s", ctx.store.counts())


def _request_stop(stop: asyncio.Event, signum: int) -> None:
    log.info("%s received: finishing the work under way", signal.Signals(signum).name)
    stop.set()


async def _drain(seconds: float) -> None:
    """Let running jobs finish for up to ``seconds``, then cancel the rest."""
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    if not others:
        return
    _, pending = await asyncio.wait(others, timeout=seconds)
    for task in pending:
        task.cancel()
    if pending:
        log.warning("cancelled %d jobs still running after %.0f s", len(pending), seconds)
        await asyncio.gather(*pending, return_exceptions=True)
