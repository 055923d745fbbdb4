"""``poll_feed``: fetch one feed (conditional GET), parse it off the loop and track every
entry as an article; politely: back-off, Retry-After, 410 Gone."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from watcher import metrics
from watcher.errors import (
    FeedError,
    FetchError,
    StoreError,
)
from watcher.pipeline.feeds import ParsedFeed, feed_digest, parse_feed
from watcher.pipeline.fetch import FetchResult, StatusError
from watcher.pipeline.sitemaps import read_sitemap
from watcher.records import FeedState, PollRecord
from watcher.tasks.context import Context
from watcher.tasks.outcomes import PollOutcome, error_text

log = logging.getLogger(__name__)

# New articles one poll takes from a feed: a 50,000-entry feed is taken over a few polls, so
# one poll's transactions and the re-check surge it causes stay bounded.
MAX_NEW_ARTICLES_PER_POLL = 20_000
# A failing feed waits twice as long after each failure in a row, at most this long.
MAX_POLL_BACKOFF = timedelta(hours=6)


async def poll_feed(ctx: Context, feed_name: str, *, force: bool = False) -> PollOutcome:
    """Poll one feed (see :func:`_poll_feed`), timed and counted for the metrics.

    Never raises but StoreError: whatever else goes wrong is a failed poll on the feed's
    row (error streak, back-off, last error), which health alerts read. Unrecorded, a crash
    would repeat at the normal interval forever, unseen but in the log. ``force`` polls a
    feed that is backing off (`watcher check --force`).
    """
    started = time.perf_counter()
    try:
        outcome = await _poll_feed(ctx, feed_name, force)
    except StoreError:
        raise  # the database is gone or full: nothing can be recorded (see _bounded)
    except Exception as exc:  # a bug, or input nothing foresaw: this feed only
        outcome = _poll_crashed(ctx, feed_name, exc)
    elapsed = time.perf_counter() - started
    metrics.poll_done(feed_name, outcome.status, elapsed, outcome.http_status)
    return outcome


async def _poll_feed(ctx: Context, feed_name: str, force: bool = False) -> PollOutcome:
    """Fetch one feed (conditional GET), parse it and track every entry as an article.

    Polite: a feed that keeps failing is polled less and less often (see
    :func:`poll_backoff`), a Retry-After is honoured, and a feed that answered 410 Gone is
    not polled again until its URL changes in the config.
    """
    feed = ctx.config.feed(feed_name)
    state = ctx.store.feed_state(feed_name)
    now = ctx.clock()
    interval = ctx.config.settings_for(feed).interval
    if state.disabled_at is not None:
        return PollOutcome(feed_name, "disabled", error=state.last_error)
    if not force and _backing_off(state, now, interval):
        return PollOutcome(
            feed_name, "skipped", error=state.last_error, next_poll=state.next_poll_at
        )
    result = None
    try:
        result = await ctx.fetcher.fetch(
            feed.url, etag=state.etag, last_modified=state.last_modified
        )
        if result.not_modified:
            return _poll_not_modified(ctx, state, result, now, now + interval)
        digest = feed_digest(result.content, url=feed.url, headers=result.headers)
        if digest == state.body_digest:
            return _poll_unchanged(ctx, feed_name, result, digest, now + interval)
        cacheable = True
        if feed.sitemap:
            parsed, cacheable = await read_sitemap(ctx.fetcher, result)
        else:
            parsed = await parse_off_loop(result.content, url=feed.url, headers=result.headers)
    except (FetchError, FeedError) as exc:
        # A feed that does not parse still answered: keep its HTTP status on the row.
        status = exc.status if isinstance(exc, FetchError) else None
        if result is not None and status is None:
            status = result.status
        return _poll_failed(ctx, state, exc, status, now, interval)
    fetched = _Fetched(result, parsed, digest, cacheable)
    return await _take_parsed(ctx, state, fetched, now, interval)


@dataclass(frozen=True)
class _Fetched:
    """A feed fetched and parsed, on its way to the store."""

    result: FetchResult
    parsed: ParsedFeed
    digest: str
    # False when the response does not stand for all the entries (a sitemap index, whose
    # children were fetched too): its validators and digest must not cut the next poll short.
    cacheable: bool = True


async def _take_parsed(
    ctx: Context, state: FeedState, fetched: _Fetched, now: datetime, interval: timedelta
) -> PollOutcome:
    """Track the parsed entries (in a thread, in chunks, at most MAX_NEW_ARTICLES_PER_POLL
    new ones) and record the poll."""
    name, result, parsed = state.name, fetched.result, fetched.parsed
    if parsed.warning:
        log.warning("feed %s: malformed, used what could be read: %s", name, parsed.warning)
    taken = await asyncio.to_thread(
        ctx.store.take_entries,
        name,
        parsed.entries,
        now,
        max_new=MAX_NEW_ARTICLES_PER_POLL,
        stop=lambda: ctx.stopping,
    )
    # Entries left for later must be fetched and parsed again: no cache keys (a 304 would
    # hide them) and no digest (the same bytes would be skipped) until all are taken.
    complete = not taken.deferred and fetched.cacheable
    record = PollRecord(
        now,
        now + interval,
        status=result.status,
        etag=result.etag if complete else None,
        last_modified=result.last_modified if complete else None,
        title=parsed.title,
        entries=len(parsed.entries),
        body_digest=fetched.digest if complete else None,
    )
    ctx.store.record_poll(name, record)
    if state.error_streak:
        log.info("feed %s: recovered after %d failed polls", name, state.error_streak)
    log.info("feed %s: %d entries, %d new articles", name, len(parsed.entries), taken.new)
    if taken.deferred:
        log.info("feed %s: %d new entries left for the next polls", name, taken.deferred)
    return PollOutcome(
        name,
        "ok",
        len(parsed.entries),
        taken.new,
        warning=parsed.warning,
        http_status=result.status,
    )


def _poll_not_modified(
    ctx: Context, state: FeedState, result: FetchResult, now: datetime, next_poll: datetime
) -> PollOutcome:
    record = PollRecord(
        now,
        next_poll,
        status=304,
        etag=result.etag,
        last_modified=result.last_modified,
        body_digest=state.body_digest,  # the body it stands for is unchanged
    )
    ctx.store.record_poll(state.name, record)
    return PollOutcome(state.name, "not_modified", http_status=304)


async def parse_off_loop(
    content: bytes, *, url: str, headers: Mapping[str, str] | None
) -> ParsedFeed:
    """Parse a feed in a worker thread: feedparser is pure-Python CPU work (~10 s for a
    10 MB feed of 50,000 entries), and the GIL's switch interval lets the event loop run
    meanwhile, so /healthz and the systemd watchdog still answer. The one call a process
    pool would take over."""
    return await asyncio.to_thread(parse_feed, content, url=url, headers=headers)


def _poll_unchanged(
    ctx: Context, feed_name: str, result: FetchResult, digest: str, next_poll: datetime
) -> PollOutcome:
    """The entries are the bytes of the last poll, and all of them are tracked (see
    :func:`~watcher.pipeline.feeds.feed_digest`): nothing to parse."""
    record = PollRecord(
        ctx.clock(),
        next_poll,
        status=result.status,
        etag=result.etag,
        last_modified=result.last_modified,
        body_digest=digest,
    )
    ctx.store.record_poll(feed_name, record)
    size = len(result.content)
    log.info("feed %s: entries as at the last poll (%d bytes): not parsed", feed_name, size)
    return PollOutcome(feed_name, "ok", http_status=result.status)


def _backing_off(state: FeedState, now: datetime, interval: timedelta) -> bool:
    """A failing feed's next poll is further away than its job's interval: skip the runs in
    between (with some slack for the job's jitter)."""
    if not state.error_streak or state.next_poll_at is None:
        return False
    return state.next_poll_at - now > interval / 5


def _poll_crashed(ctx: Context, feed_name: str, exc: Exception) -> PollOutcome:
    """Record an unexpected exception of a poll like any failed poll."""
    log.debug("feed %s: internal error", feed_name, exc_info=True)
    feed = ctx.config.feeds_by_name.get(feed_name)  # None if a reload just removed it
    interval = ctx.config.settings_for(feed).interval
    state = ctx.store.feed_state(feed_name)
    return _poll_failed(ctx, state, exc, None, ctx.clock(), interval)


def _poll_failed(
    ctx: Context,
    state: FeedState,
    exc: Exception,
    status: int | None,
    now: datetime,
    interval: timedelta,
) -> PollOutcome:
    streak = state.error_streak + 1
    wait = poll_backoff(interval, streak)
    retry_after = exc.retry_after if isinstance(exc, StatusError) else None
    if retry_after is not None:  # the server said when (capped by watcher.pipeline.headers)
        wait = max(wait, timedelta(seconds=retry_after))
    gone = status == 410
    reason = error_text(exc)
    if gone:
        log.error(
            "feed %s: %s: the feed is gone and will not be polled again; change its URL in the "
            "config to try again, or remove it",
            state.name,
            reason,
        )
    else:
        log.warning(
            "feed %s: %s (%d failed polls in a row; next try in %s)",
            state.name,
            reason,
            streak,
            _short_duration(wait),
        )
    error = f"{reason} (feed disabled: 410 Gone)" if gone else reason
    record = PollRecord(now, now + wait, status=status, error=error, disable=gone)
    ctx.store.record_poll(state.name, record)
    status_name = "disabled" if gone else "failed"
    return PollOutcome(state.name, status_name, error=error, http_status=status)


def poll_backoff(interval: timedelta, streak: int) -> timedelta:
    """The wait after ``streak`` failed polls in a row: the interval, doubling with each
    failure after the first, never more than MAX_POLL_BACKOFF."""
    doubled = interval * (1 << min(streak - 1, 20))
    return min(doubled, max(interval, MAX_POLL_BACKOFF))


def _short_duration(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
