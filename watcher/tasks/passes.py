"""Many tasks at once: a whole pass (``run_pass``), due re-checks in batches, the outbox,
feed health and the prune, ``fetch.concurrency`` at a time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from watcher.delivery.outbox import DispatchSummary
from watcher.pipeline.health import current_problems
from watcher.tasks.check import check_article
from watcher.tasks.context import Context
from watcher.tasks.outcomes import CheckOutcome, PassSummary, PollOutcome
from watcher.tasks.poll import poll_feed

log = logging.getLogger(__name__)

# The record of sent messages is what rate limits count: kept longer than any period.
SENT_LOG_KEPT = timedelta(days=32)

T = TypeVar("T")
K = TypeVar("K")
Progress = Callable[[str, int, int], None]  # (stage, done, total)


async def run_pass(
    ctx: Context,
    *,
    feeds: list[str] | None = None,
    recheck_all: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> PassSummary:
    """Poll the feeds (those backing off too with ``force``), then check every due article
    (all tracked ones with ``recheck_all``)."""
    names = feeds if feeds is not None else [feed.name for feed in ctx.config.feeds]
    summary = PassSummary()

    async def poll(poll_ctx: Context, name: str) -> PollOutcome:
        return await poll_feed(poll_ctx, name, force=force)

    summary.polls = await _bounded(ctx, "feeds", names, poll, progress)
    due = ctx.store.due_article_ids(ctx.clock(), feeds=feeds, everything=recheck_all)
    summary.checks = await check_articles(ctx, due, progress)
    summary.health = await check_health(ctx)
    summary.delivery = await ctx.outbox.drain()
    return summary


async def prune(ctx: Context) -> dict[str, int]:
    """Delete what ``keep_versions_for`` no longer keeps (retired articles, with their versions
    and alerts) and the sent-message log past any rate limit's period; idempotent."""
    now = ctx.clock()
    keep = ctx.config.keep_versions_for
    deleted = ctx.store.prune(
        retired_before=now - keep if keep is not None else None,
        messages_before=now - SENT_LOG_KEPT,
    )
    if ctx.archive is not None and keep is not None:
        # Files of the pruned versions go once no version names them; recent files stay for
        # their failed and orphan records.
        gone = ctx.archive.delete_unreferenced(ctx.store.warc_files_in_use(), now - keep)
        deleted["warc_files"] = len(gone)
    if any(deleted.values()):
        log.info(
            "prune: %d retired articles, %d sent-message records and %d WARC files deleted",
            deleted["articles"],
            deleted["sent_messages"],
            deleted.get("warc_files", 0),
        )
    return deleted


async def check_health(ctx: Context) -> list[str]:
    """Raise an alert for each feed problem that starts and for each that heals (see
    :mod:`watcher.pipeline.health`); returns a line per change. Idempotent: a problem already
    alerted is not alerted again."""
    now = ctx.clock()
    facts = ctx.store.health_facts(now - ctx.config.health.window)
    current = {(p.feed, p.problem): p for p in current_problems(ctx.config, facts, now)}
    known = {(p.feed, p.problem): p for p in ctx.store.health_problems()}
    raised = [p for key, p in current.items() if key not in known]
    healed = [p for key, p in known.items() if key not in current]
    urls = {fact.feed: fact.url for fact in facts}
    ctx.store.record_health(raised, healed, now, urls)
    changes = [f"feed {p.feed} unhealthy: {p.reason}" for p in raised]
    changes += [f"feed {p.feed} recovered ({p.problem}: {p.reason})" for p in healed]
    for change in changes:
        (log.warning if "unhealthy" in change else log.info)("%s", ctx.config.mask(change))
    return changes


async def dispatch(ctx: Context) -> DispatchSummary:
    """Route new alerts and send what is due (one round; see :mod:`watcher.delivery.outbox`)."""
    return await ctx.outbox.dispatch()


async def check_due(ctx: Context, *, batch: int) -> list[CheckOutcome]:
    """Check up to ``batch`` articles whose re-check is due, oldest due first."""
    return await check_articles(ctx, ctx.store.due_article_ids(ctx.clock(), limit=batch))


async def check_articles(
    ctx: Context, article_ids: list[int], progress: Progress | None = None
) -> list[CheckOutcome]:
    """Check these articles; their unchanged checks are written in batches, the last when
    the batch ends (also when it is cancelled by a drain: see watcher.storage.checkbook)."""
    with ctx.store.batched_checks():
        return await _bounded(ctx, "articles", article_ids, check_article, progress)


async def _bounded(
    ctx: Context,
    stage: str,
    items: list[K],
    task: Callable[[Context, K], Awaitable[T]],
    progress: Progress | None,
) -> list[T]:
    """Run ``task`` on every item, ``fetch.concurrency`` at once.

    The tasks record their own failures on their rows (see :func:`poll_feed`) and raise
    only StoreError, which ends the batch: the database failing fails every item alike.
    Once the process is stopping, items not yet started are left alone (they stay due and
    are done after the restart): only the work under way is finished."""
    semaphore = asyncio.Semaphore(ctx.config.fetch.concurrency)
    done = 0

    async def run(item: K) -> T | None:
        nonlocal done
        async with semaphore:
            if ctx.stopping:
                return None
            result = await task(ctx, item)
        done += 1
        if progress is not None:
            progress(stage, done, len(items))
        return result

    if progress is not None:
        progress(stage, 0, len(items))
    results = await asyncio.gather(*(run(item) for item in items))
    return [result for result in results if result is not None]
