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
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from watcher.errors import StoreError
from watcher.tasks import Context, check_due, check_health, dispatch, poll_feed, prune

log = logging.getLogger(__name__)

RECHECK_JOB = "recheck"
FEED_JOB_PREFIX = "feed:"
# Due re-checks are claimed at least this often (more often when a schedule step is shorter),
# at most RECHECK_BATCH per claim.
RECHECK_EVERY = timedelta(seconds=30)
RECHECK_BATCH = 200
OUTBOX_JOB = "outbox"
PRUNE_JOB = "prune"
HEALTH_JOB = "health"
HEALTH_EVERY = timedelta(minutes=1)
PRUNE_EVERY = timedelta(days=1)
PRUNE_FIRST_AFTER = timedelta(minutes=10)
# The outbox is looked at this often, and at once after a check recorded alerts.
OUTBOX_EVERY = timedelta(seconds=10)


def recheck_tick(ctx: Context) -> timedelta:
    """The shortest re-check step of any feed, within [1 s, RECHECK_EVERY]."""
    steps = [
        step.every for feed in ctx.config.feeds for step in ctx.config.settings_for(feed).recheck
    ]
    return max(timedelta(seconds=1), min([RECHECK_EVERY, *steps]))


def build_scheduler(ctx: Context, *, recheck_batch: int = RECHECK_BATCH) -> AsyncIOScheduler:
    """One interval job per feed, one re-check job, one outbox job and a daily prune; none of
    them ever overlaps itself."""
    scheduler = AsyncIOScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    now = ctx.clock()
    sync_feed_jobs(scheduler, ctx)
    # The prune's first run is not at start: a restart loop must not prune again and again.
    periodic = (
        _Periodic(
            RECHECK_JOB,
            "re-check due articles",
            _check_due_then_send,
            (ctx, scheduler, recheck_batch),
            recheck_tick(ctx),
            now,
        ),
        _Periodic(OUTBOX_JOB, "send due alerts", _send_alerts, (ctx,), OUTBOX_EVERY, now),
        _Periodic(
            HEALTH_JOB, "feed health", check_health, (ctx,), HEALTH_EVERY, now + HEALTH_EVERY
        ),
        _Periodic(
            PRUNE_JOB, "prune retired articles", prune, (ctx,), PRUNE_EVERY, now + PRUNE_FIRST_AFTER
        ),
    )
    for job in periodic:
        scheduler.add_job(
            _reporting_store_errors(job.run, job.name),
            IntervalTrigger(seconds=job.every.total_seconds()),
            args=job.args,
            id=job.id,
            name=job.name,
            next_run_time=job.first,
        )
    return scheduler


class _Periodic(NamedTuple):
    id: str
    name: str
    run: Callable[..., Awaitable[object]]
    args: tuple[object, ...]
    every: timedelta
    first: datetime


def sync_feed_jobs(scheduler: AsyncIOScheduler, ctx: Context) -> FeedJobChanges:
    """Make the feed jobs match ``ctx.config``: a job for each feed (added ones first polled
    when their row says, spread out), none for removed feeds, new intervals for changed ones.
    The re-check tick follows the shortest schedule step. Used at start and on reload."""
    now = ctx.clock()
    states = {state.name: state for state in ctx.store.feed_states()}
    wanted = {f"{FEED_JOB_PREFIX}{feed.name}": feed for feed in ctx.config.feeds}
    changes = FeedJobChanges()
    for job in scheduler.get_jobs():
        if job.id.startswith(FEED_JOB_PREFIX) and job.id not in wanted:
            job.remove()
            changes.removed.append(job.id.removeprefix(FEED_JOB_PREFIX))
    for job_id, feed in wanted.items():
        interval = ctx.config.settings_for(feed).interval
        trigger = IntervalTrigger(seconds=interval.total_seconds(), jitter=_jitter(interval))
        job = scheduler.get_job(job_id)
        if job is None:
            state = states.get(feed.name)
            scheduler.add_job(
                _reporting_store_errors(_poll_then_check_new, f"poll {feed.name}"),
                trigger,
                args=(ctx, scheduler, feed.name),
                id=job_id,
                name=f"poll {feed.name}",
                next_run_time=first_poll(now, state.next_poll_at if state else None, interval),
            )
            changes.added.append(feed.name)
        elif job.trigger.interval != trigger.interval:
            job.reschedule(trigger)
            changes.changed.append(feed.name)
    recheck = scheduler.get_job(RECHECK_JOB)
    tick = recheck_tick(ctx)
    if recheck is not None and recheck.trigger.interval != tick:
        recheck.reschedule(IntervalTrigger(seconds=tick.total_seconds()))
    return changes


@dataclass
class FeedJobChanges:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


def first_poll(now: datetime, next_poll_at: datetime | None, interval: timedelta) -> datetime:
    """When a feed is first polled after start-up: when its row says it is due, spread over a
    few seconds, so a restart does not poll every feed at the same instant."""
    spread = timedelta(seconds=random.uniform(0, min(interval.total_seconds() / 10, 30)))
    if next_poll_at is None or next_poll_at <= now:
        return now + spread
    return next_poll_at + spread


def _reporting_store_errors(
    run: Callable[..., Awaitable[object]], name: str
) -> Callable[..., Awaitable[None]]:
    """``run`` as a job whose database errors are one log line, not APScheduler's traceback:
    a database that fails is no bug here. Whether it is lost for good is for the daemon's
    database watch to say (:mod:`watcher.storage.presence`); the job runs again at its next tick."""

    async def job(*args: object) -> None:
        try:
            await run(*args)
        except StoreError as exc:
            log.error("%s: %s", name, exc)

    return job


def _jitter(interval: timedelta) -> float:
    # A tenth of the interval, at most a minute: feeds drift apart instead of firing together.
    return min(interval.total_seconds() / 10, 60.0)


async def _poll_then_check_new(ctx: Context, scheduler: AsyncIOScheduler, feed: str) -> None:
    outcome = await poll_feed(ctx, feed)
    if outcome.new_articles:
        # New articles are due at once: run the re-check job now instead of at its next tick.
        _run_soon(ctx, scheduler, RECHECK_JOB)


async def _check_due_then_send(ctx: Context, scheduler: AsyncIOScheduler, batch: int) -> None:
    # While batches come back full, more are due: claim the next at once (for a bounded
    # time) instead of waiting for the next tick, which would cap re-checks at one batch per
    # tick (200 per 30 s with the default schedule; found by the soak benchmark).
    deadline = time.monotonic() + RECHECK_EVERY.total_seconds()
    while True:
        outcomes = await check_due(ctx, batch=batch)
        if any(outcome.alerts for outcome in outcomes):
            _run_soon(ctx, scheduler, OUTBOX_JOB)
        if len(outcomes) < batch or ctx.stopping or time.monotonic() > deadline:
            return


async def _send_alerts(ctx: Context) -> None:
    # A backlog is worked through round after round, for a bounded time so that a stop
    # request (which waits for running jobs) is not held up by thousands of sends.
    deadline = time.monotonic() + OUTBOX_EVERY.total_seconds() * 3
    while (await dispatch(ctx)).full_batches and time.monotonic() < deadline and not ctx.stopping:
        pass


def _run_soon(ctx: Context, scheduler: AsyncIOScheduler, job_id: str) -> None:
    job = scheduler.get_job(job_id)
    if job is not None:
        job.modify(next_run_time=ctx.clock())
