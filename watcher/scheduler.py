"""APScheduler adapter: the config becomes jobs that call :mod:`watcher.tasks`.

AsyncIOScheduler, because every task is a coroutine sharing one httpx client and one event
loop: no threads contend for the SQLite writer, and a check waiting on a slow site costs
nothing. The schedule itself lives on database rows (``feed.next_poll_at``,
``article.next_check_at``); the scheduler only holds one job per feed plus one job that
claims due re-checks in batches, so a million tracked articles are rows, not jobs.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from watcher.tasks import Context, check_due, poll_feed

log = logging.getLogger(__name__)

RECHECK_JOB = "recheck"
# Due re-checks are claimed at least this often (more often when a schedule step is shorter),
# at most RECHECK_BATCH per claim.
RECHECK_EVERY = timedelta(seconds=30)
RECHECK_BATCH = 200


def recheck_tick(ctx: Context) -> timedelta:
    """The shortest re-check step of any feed, within [1 s, RECHECK_EVERY]."""
    steps = [
        step.every for feed in ctx.config.feeds for step in ctx.config.settings_for(feed).recheck
    ]
    return max(timedelta(seconds=1), min([RECHECK_EVERY, *steps]))


def build_scheduler(ctx: Context, *, recheck_batch: int = RECHECK_BATCH) -> AsyncIOScheduler:
    """One interval job per feed, one re-check job; none of them ever overlaps itself."""
    scheduler = AsyncIOScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    now = ctx.clock()
    states = {state.name: state for state in ctx.store.feed_states()}
    for feed in ctx.config.feeds:
        interval = ctx.config.settings_for(feed).interval
        state = states.get(feed.name)
        scheduler.add_job(
            _poll_then_check_new,
            IntervalTrigger(seconds=interval.total_seconds(), jitter=_jitter(interval)),
            args=(ctx, scheduler, feed.name),
            id=f"feed:{feed.name}",
            name=f"poll {feed.name}",
            next_run_time=first_poll(now, state.next_poll_at if state else None, interval),
        )
    scheduler.add_job(
        check_due,
        IntervalTrigger(seconds=recheck_tick(ctx).total_seconds()),
        kwargs={"ctx": ctx, "batch": recheck_batch},
        id=RECHECK_JOB,
        name="re-check due articles",
        next_run_time=now,
    )
    return scheduler


def first_poll(now: datetime, next_poll_at: datetime | None, interval: timedelta) -> datetime:
    """When a feed is first polled after start-up: when its row says it is due, spread over a
    few seconds, so a restart does not poll every feed at the same instant."""
    spread = timedelta(seconds=random.uniform(0, min(interval.total_seconds() / 10, 30)))
    if next_poll_at is None or next_poll_at <= now:
        return now + spread
    return next_poll_at + spread


def _jitter(interval: timedelta) -> float:
    # A tenth of the interval, at most a minute: feeds drift apart instead of firing together.
    return min(interval.total_seconds() / 10, 60.0)


async def _poll_then_check_new(ctx: Context, scheduler: AsyncIOScheduler, feed: str) -> None:
    outcome = await poll_feed(ctx, feed)
    if outcome.new_articles:
        # New articles are due at once: run the re-check job now instead of at its next tick.
        job = scheduler.get_job(RECHECK_JOB)
        if job is not None:
            job.modify(next_run_time=ctx.clock())
