"""watcher's jobs: each one a thin call of a task function of :mod:`watcher.tasks` with the
worker's :class:`~watcher.tasks.Context`, under the lock that keeps its guarantee.

- ``watcher.poll``: :func:`~watcher.tasks.poll_feed`; lock ``feed:NAME``
- ``watcher.check``: :func:`~watcher.tasks.check_article`; lock ``article:ID``
- ``watcher.dispatch``: :func:`~watcher.tasks.dispatch`, every 10 s and after a check
  recorded alerts; lock ``watcher:dispatch`` (one outbox round at a time)
- ``watcher.health``: :func:`~watcher.tasks.check_health`, every minute; ``watcher:health``
- ``watcher.prune``: :func:`~watcher.tasks.prune`, daily; ``watcher:prune``
- ``watcher.schedule``: due rows become poll and check jobs, every 5 s; ``watcher:schedule``
- ``watcher.recover``: hands back the jobs of dead workers, every 5 s; no lock (see there)

Each job's queueing lock is its lock: at most one waits in the queue per article, feed or
periodic job, so a slow worker pool is not flooded with duplicates.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import procrastinate
from procrastinate import exceptions as queue_errors
from procrastinate.jobs import Job, Status
from procrastinate.manager import JobManager

from watcher.distributed.runtime import Runtime, runtime_of
from watcher.tasks import check_article, check_health, dispatch, poll_feed, prune

log = logging.getLogger(__name__)

POLL, CHECK, DISPATCH = "watcher.poll", "watcher.check", "watcher.dispatch"
HEALTH, PRUNE, SCHEDULE, RECOVER = (
    "watcher.health",
    "watcher.prune",
    "watcher.schedule",
    ("watcher.recover"),
)
OUTBOX_LOCK = "watcher:dispatch"  # the dispatch job's lock: one outbox round at a time
# A job that failed on the database (StoreError) waits 5 s, 10 s, ... up to 50 attempts
# (about 2 hours): a database outage delays work, it does not drop it. The same strategy
# hands back a job cut short by a SIGTERM drain.
RETRY = procrastinate.RetryStrategy(max_attempts=50, wait=5, linear_wait=5)
# Check jobs waiting in the queue above which the scheduler claims no more due articles:
# the rest stay due on their rows, where the queue cannot grow without bound.
CHECKS_HIGH_WATER = 2000
CLAIM_BATCH = 500
# How long a claimed article is held for its job; after that it is due again (a job lost
# between claim and defer).
CLAIM_LEASE = timedelta(minutes=10)
# One outbox job works through a backlog for at most this long (a drain waits for it).
DISPATCH_FOR_SECONDS = 30.0


def register_jobs(app: procrastinate.App) -> None:
    """Declare watcher's jobs on ``app`` (periodic ones with their cron)."""
    # Procrastinate's cron takes the seconds as a sixth field, at the end.
    every_5s = "* * * * * */5"
    _periodic(app, SCHEDULE, every_5s, _schedule)
    _periodic(app, DISPATCH, "* * * * * */10", _dispatch)
    _periodic(app, HEALTH, "* * * * *", _health)
    _periodic(app, PRUNE, "17 4 * * *", _prune)
    # No job lock: a recover job held by a dead worker would block every other one, and
    # nobody would hand it back. Handing back is idempotent (see _recover).
    app.periodic(cron=every_5s)(
        app.task(name=RECOVER, pass_context=True, queueing_lock=RECOVER)(_recover)
    )
    app.task(name=POLL, pass_context=True, retry=RETRY)(_poll)
    app.task(name=CHECK, pass_context=True, retry=RETRY)(_check)


def _periodic(app: procrastinate.App, name: str, cron: str, run: Any) -> None:
    lock = f"watcher:{name.removeprefix('watcher.')}"
    task = app.task(name=name, pass_context=True, lock=lock, queueing_lock=lock)(run)
    app.periodic(cron=cron)(task)


# ---------------------------------------------------------------------- the jobs


async def _poll(context: procrastinate.JobContext, feed: str) -> str:
    runtime = runtime_of(context)
    async with runtime.job():
        ctx = runtime.ctx
        if feed not in ctx.config.feeds_by_name:
            return "not configured"
        state = ctx.store.feed_state(feed)
        if state.next_poll_at is not None and state.next_poll_at > ctx.clock():
            return "not due"  # polled since this job was queued (a duplicate behind the lock)
        outcome = await poll_feed(ctx, feed)
        if outcome.new_articles:
            await schedule_articles(runtime)  # new articles are due at once
        return outcome.status


async def _check(context: procrastinate.JobContext, article_id: int) -> str:
    runtime = runtime_of(context)
    async with runtime.job():
        outcome = await check_article(runtime.ctx, article_id)
        if outcome.alerts:
            await defer_once(runtime, DISPATCH, OUTBOX_LOCK, {"timestamp": int(time.time())})
        return outcome.status


async def _dispatch(context: procrastinate.JobContext, timestamp: int) -> int:
    runtime = runtime_of(context)
    async with runtime.job():
        ctx = runtime.ctx
        deadline = time.monotonic() + DISPATCH_FOR_SECONDS
        sent = 0
        while True:
            summary = await dispatch(ctx)
            sent += summary.sent
            if not summary.full_batches or time.monotonic() > deadline or ctx.stopping:
                return sent


async def _health(context: procrastinate.JobContext, timestamp: int) -> int:
    runtime = runtime_of(context)
    async with runtime.job():
        return len(await check_health(runtime.ctx))


async def _prune(context: procrastinate.JobContext, timestamp: int) -> int:
    runtime = runtime_of(context)
    async with runtime.job():
        deleted = await prune(runtime.ctx)
        return deleted["articles"]


async def _schedule(context: procrastinate.JobContext, timestamp: int) -> str:
    runtime = runtime_of(context)
    async with runtime.job():
        ctx = runtime.ctx
        names = [feed.name for feed in ctx.config.feeds]
        polls = 0
        for feed in ctx.store.due_feed_names(ctx.clock(), names):
            polls += await defer_once(runtime, POLL, f"feed:{feed}", {"feed": feed})
        checks = await schedule_articles(runtime)
        return f"{polls} polls, {checks} checks"


async def _recover(context: procrastinate.JobContext, timestamp: int) -> int:
    """Hand back the jobs under way on workers whose heartbeat is older than
    ``queue.stalled_after``: they were killed, or lost the database. Two recover jobs at once
    (one whose worker died mid-way, and its own retry) may both try one job: the second
    finds it no longer under way, which is refused and skipped (see :func:`_hand_back`)."""
    runtime = runtime_of(context)
    async with runtime.job():
        manager = runtime.app.job_manager
        silent = runtime.ctx.config.queue.stalled_after.total_seconds()
        handed = 0
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=silent):
            if job.id == context.job.id:
                continue
            if not await _hand_back(manager, job):
                continue
            handed += 1
            log.warning(
                "job %s (%s) of a worker silent for over %d s: handed back to the queue",
                job.id,
                job.call_string,
                silent,
            )
        return handed


async def _hand_back(manager: JobManager, job: Job) -> bool:
    """Queue a dead worker's job again; False when it finished or was handed back meanwhile.

    When another run of the same job already waits (a periodic job deferred again since),
    its queueing lock refuses the retry: the dead run is ended as failed instead, or it
    would hold the job's lock for ever and the waiting run could never start."""
    try:
        await manager.retry_job(job)
    except queue_errors.UniqueViolation:
        try:
            await manager.finish_job(job, status=Status.FAILED, delete_job=False)
        except queue_errors.ConnectorException:
            return False
        log.warning("job %s (%s) of a dead worker ended: another waits", job.id, job.call_string)
        return False
    except queue_errors.ConnectorException:
        return False
    return True


# ---------------------------------------------------------------------- deferring


async def schedule_articles(runtime: Runtime) -> int:
    """Claim due articles (as many as the queue has room for) and queue a check of each."""
    ctx = runtime.ctx
    row = await runtime.app.connector.execute_query_one_async(
        "SELECT count(*) AS n FROM procrastinate_jobs WHERE task_name = %(task)s "
        "AND status = 'todo'",
        task=CHECK,
    )
    room = min(CLAIM_BATCH, CHECKS_HIGH_WATER - int(row["n"]))
    now = ctx.clock()
    lease = now + CLAIM_LEASE
    ids = ctx.store.claim_due_articles(now, limit=room, until=lease)
    if not ids:
        return 0
    jobs = [_job(runtime, CHECK, f"article:{i}", {"article_id": i}) for i in ids]
    try:
        await runtime.app.job_manager.batch_defer_jobs_async(jobs)
    except queue_errors.AlreadyEnqueued:
        # Some article already waits (a claim's lease ran out while its job was queued):
        # the batch was refused whole, so go one by one.
        queued = [await defer_once(runtime, CHECK, job.lock or "", job.task_kwargs) for job in jobs]
        return sum(queued)
    return len(ids)


async def defer_once(runtime: Runtime, task: str, lock: str, kwargs: dict[str, Any]) -> int:
    """Queue one job unless one with its lock already waits; returns 1 if queued."""
    try:
        await runtime.app.job_manager.defer_job_async(_job(runtime, task, lock, kwargs))
    except queue_errors.AlreadyEnqueued:
        return 0
    return 1


def _job(runtime: Runtime, task: str, lock: str, kwargs: dict[str, Any]) -> Any:
    deferrer = runtime.app.tasks[task].configure(lock=lock, queueing_lock=lock)
    return deferrer.make_new_job(**kwargs)
