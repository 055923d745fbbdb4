"""What every task is handed: the config, the store, the HTTP client, the rules and the
outbox, opened once per process (:func:`open_context`) and swapped on reload."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from watcher.clock import utc_now
from watcher.config.models import Config
from watcher.delivery.outbox import Outbox
from watcher.errors import (
    ConfigError,
)
from watcher.pipeline.fetch import Fetcher, FetchLimits, HostLimiter
from watcher.pipeline.rules import Rule, compile_rules
from watcher.storage.archive import WarcArchive
from watcher.storage.store import Store
from watcher.tasks.cpu import CpuPool

log = logging.getLogger(__name__)

@dataclass
class Context:
    """Everything a task needs, opened once per process."""

    config: Config
    store: Store
    fetcher: Fetcher
    rules: tuple[Rule, ...]
    outbox: Outbox
    clock: Callable[[], datetime] = utc_now
    # Set when the process is asked to stop: batches start no new items (see _bounded).
    stopping: bool = False
    # The WARC archive of originals (None: `archive` is off).
    archive: WarcArchive | None = None
    # Where pages are extracted (see watcher.tasks.cpu); by default inline.
    cpu: CpuPool = field(default_factory=lambda: CpuPool(1))


@asynccontextmanager
async def open_context(
    config: Config,
    store: Store | None = None,
    clock: Callable[[], datetime] = utc_now,
    *,
    host_slots: HostLimiter | None = None,
    pool: bool = True,
) -> AsyncIterator[Context]:
    """The context of one process. ``host_slots`` replaces the in-process per-host limit
    (the queue's workers share theirs through the database). Without ``pool`` pages are
    extracted inline whatever ``cpu.workers`` says (a queue worker: run one per core)."""
    own_store = store is None
    store = store or Store.open(config.database_url())
    # No guard by default: feed URLs are the user's own. Article fetches pass theirs.
    fetcher = Fetcher(fetch_limits(config), host_slots=host_slots)
    cpu = CpuPool(config.cpu.worker_count(os.cpu_count()) if pool else 1)
    try:
        outbox = Outbox.build(config, store, clock)
        store.sync_feeds((feed.name, feed.url) for feed in config.feeds)
        rules = compile_rules(config.rules)
        archive = open_archive(config)
        yield Context(config, store, fetcher, rules, outbox, clock, archive=archive, cpu=cpu)
    finally:
        store.flush_checks_quietly()  # what a batch cut short left pending
        cpu.close()
        await fetcher.aclose()
        if own_store:
            store.close()


def reconfigure(ctx: Context, config: Config) -> None:
    """Swap a new config into a running context: feeds, rules, notifiers and templates.

    Everything is built before anything is swapped, so a notifier or template that fails
    raises ConfigError and leaves the context as it was. Fetch settings and the database
    take effect at the next start (requests under way hold the current HTTP client).
    """
    outbox = Outbox.build(config, ctx.store, ctx.clock)
    rules = compile_rules(config.rules)
    if config.database_url() != ctx.config.database_url():
        raise ConfigError(
            "the database cannot change while running; restart watcher for that",
            file=config.source,
            key="database",
        )
    if fetch_limits(config) != fetch_limits(ctx.config):
        log.warning("fetch settings changed: they take effect at the next restart")
    ctx.store.sync_feeds((feed.name, feed.url) for feed in config.feeds)
    ctx.config, ctx.rules, ctx.outbox = config, rules, outbox


def open_archive(config: Config) -> WarcArchive | None:
    """The config's WARC archive, if it has one (a reload does not move it: a restart does)."""
    folder = config.warc_dir()
    if folder is None or config.archive is None:
        return None
    return WarcArchive(folder, config.archive.max_file_size)


def fetch_limits(config: Config) -> FetchLimits:
    settings = config.fetch
    base = FetchLimits()
    return FetchLimits(
        connect_timeout=settings.connect_timeout.total_seconds(),
        read_timeout=settings.read_timeout.total_seconds(),
        deadline=settings.deadline.total_seconds(),
        max_bytes=settings.max_bytes,
        max_redirects=settings.max_redirects,
        per_host=settings.per_host,
        user_agent=settings.user_agent or base.user_agent,
    )
