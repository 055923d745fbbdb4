"""Page extraction off the event loop, in a pool of worker processes (``cpu.workers``).

The event loop fetches; the processes extract, so both cores work during a first wave.
Only plain values cross: the page's bytes in, an ``Extracted`` or the reason extraction
failed out. The first pages are extracted inline (``INLINE_FIRST``): a `watcher check` of
a few articles would pay more for a fork server's start (about a second of CPU) than the
pool saves it; the pool starts with the page after those (a run that only gets 304s starts
none), from a fork server that has imported the extractor once.

A worker process that dies (killed, out of memory) breaks the whole executor: every page
then under way in it is retried once in a new one. A page that kills its worker twice is a
failed check naming that. The workers and their fork server (:mod:`watcher.tasks.cpu_server`)
ignore SIGINT and SIGTERM: a stop signal is the
daemon's to handle (its drain waits for the checks under way, pool included), and they
leave on their own when their parent process is gone.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from watcher.errors import ExtractError
from watcher.pipeline.extract import Extracted, extract_article

log = logging.getLogger(__name__)

T = TypeVar("T")
# How often a worker looks whether its parent is still there.
PARENT_POLL_SECONDS = 1.0
# How the fork server learns which process it serves (see watcher.tasks.cpu_server).
PARENT_VARIABLE = "WATCHER_POOL_PARENT"
# Pages a process extracts inline before it starts its pool (see the module's docstring).
INLINE_FIRST = 8


class WorkerDied(Exception):
    """A pool process died twice on the same piece of work."""


class CpuPool:
    """``workers`` processes for extraction; 1 runs it inline on the event loop."""

    def __init__(self, workers: int, inline_first: int = INLINE_FIRST) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._in_flight = 0
        self._inline_left = inline_first

    async def extract(self, content: bytes, url: str, content_type: str | None) -> Extracted:
        """:func:`~watcher.pipeline.extract.extract_article`, in the pool when there is one."""
        if self._inline():
            return extract_article(content, url, content_type=content_type)
        try:
            result = await self.run(extract_plain, content, url, content_type)
        except WorkerDied:
            raise ExtractError(url, "the extraction process died twice on this page") from None
        if isinstance(result, str):
            raise ExtractError(url, result)
        return result

    def _inline(self) -> bool:
        """Whether this page is extracted on the event loop: always without a pool, and for
        the first pages of a process whose pool has not started yet."""
        if self.workers <= 1:
            return True
        if self._executor is None and self._inline_left > 0:
            self._inline_left -= 1
            return True
        return False

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` in a pool process; retried once in a new pool if its process dies."""
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            executor = self._current()
            self._in_flight += 1
            try:
                return await loop.run_in_executor(executor, work, *args)
            except BrokenProcessPool:
                self._replace(executor)
                log.warning("a pool process died (attempt %d): starting a new pool", attempt)
            finally:
                self._in_flight -= 1
        raise WorkerDied(getattr(work, "__name__", str(work)))

    async def warm(self) -> None:
        """Start every process now (a benchmark's timing should not include their start)."""
        if self.workers > 1:
            await asyncio.gather(*(self.run(os.getpid) for _ in range(self.workers)))

    def busy(self) -> bool:
        """Whether some work is in the pool now."""
        return self._in_flight > 0

    def pids(self) -> list[int]:
        """The pool's processes now (none before the first page)."""
        processes = getattr(self._executor, "_processes", None) or {}
        return [int(pid) for pid in processes]

    def close(self) -> None:
        """Stop the processes (after the drain: no work is under way any more)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _current(self) -> ProcessPoolExecutor:
        if self._executor is None:
            os.environ[PARENT_VARIABLE] = str(os.getpid())
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["watcher.tasks.cpu_server"])
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_worker_start
            )
        return self._executor

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """Drop a broken executor (once: the pages it failed all come here)."""
        if self._executor is broken:
            broken.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def extract_plain(content: bytes, url: str, content_type: str | None) -> Extracted | str:
    """In a worker: the extraction, or why it failed as a plain string (exceptions with
    their own constructors do not all survive pickling)."""
    try:
        return extract_article(content, url, content_type=content_type)
    except ExtractError as exc:
        return exc.reason


def _worker_start() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = os.getppid()
    threading.Thread(target=leave_with_parent, args=(parent,), daemon=True).start()


def leave_with_parent(parent: int) -> None:
    """A worker whose parent is gone (killed with -9) has nobody to work for: it exits."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(0)
