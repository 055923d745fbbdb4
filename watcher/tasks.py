"""The verbs: ``poll_feed``, ``check_article``, ``dispatch`` and a whole ``run_pass``.

This is the only module that knows the pipeline order (fetch → extract → normalise → compare
→ store → diff → rules → alert rows). Task functions take a :class:`Context` and ids or names,
are idempotent (re-running one after a crash stores nothing twice: see
:mod:`watcher.storage.schema`) and contain no scheduler code, so the embedded scheduler and a
queue worker can both call them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from watcher import metrics
from watcher.clock import utc_now
from watcher.config.models import Config, FeedSettings, RecheckStep
from watcher.delivery.outbox import DispatchSummary, Outbox
from watcher.errors import (
    ConfigError,
    ExtractError,
    FeedError,
    FetchError,
    StoreError,
    WatcherError,
)
from watcher.pipeline.extract import extract_article, fragment_to_text
from watcher.pipeline.feeds import ParsedFeed, feed_digest, parse_feed
from watcher.pipeline.fetch import Fetcher, FetchLimits, FetchResult, StatusError, URLCheck
from watcher.pipeline.headers import Validators
from watcher.pipeline.health import current_problems
from watcher.pipeline.judge import Judgement, Page, judge
from watcher.pipeline.netguard import Refused, url_guard
from watcher.pipeline.rules import Rule, compile_rules
from watcher.pipeline.urls import userinfo_allowed
from watcher.records import ArticleState, CheckRecord, FeedState, PollRecord
from watcher.storage.store import Store

log = logging.getLogger(__name__)

# How many recent versions a new text is compared with (reverts and A/B flip-flops).
RECENT_VERSIONS = 10
# New articles one poll takes from a feed: a 50,000-entry feed is taken over a few polls, so
# one poll's transactions and the re-check surge it causes stay bounded.
MAX_NEW_ARTICLES_PER_POLL = 20_000
# A failing feed waits twice as long after each failure in a row, at most this long.
MAX_POLL_BACKOFF = timedelta(hours=6)
# The record of sent messages is what rate limits count: kept longer than any period.
SENT_LOG_KEPT = timedelta(days=32)

T = TypeVar("T")
K = TypeVar("K")
Progress = Callable[[str, int, int], None]  # (stage, done, total)


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


@asynccontextmanager
async def open_context(
    config: Config, store: Store | None = None, clock: Callable[[], datetime] = utc_now
) -> AsyncIterator[Context]:
    own_store = store is None
    store = store or Store.open(config.database_url())
    # No guard by default: feed URLs are the user's own. Article fetches pass theirs.
    fetcher = Fetcher(fetch_limits(config))
    try:
        outbox = Outbox.build(config, store, clock)
        store.sync_feeds((feed.name, feed.url) for feed in config.feeds)
        yield Context(config, store, fetcher, compile_rules(config.rules), outbox, clock)
    finally:
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


# ----------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class PollOutcome:
    feed: str
    status: str  # ok | not_modified | failed | skipped (backing off) | disabled (410 Gone)
    entries: int = 0
    new_articles: int = 0
    error: str | None = None
    warning: str | None = None
    http_status: int | None = None


@dataclass(frozen=True)
class CheckOutcome:
    article_id: int
    url: str
    status: str  # new | changed | unchanged | seen_again | failed
    version: int | None = None
    alerts: int = 0
    error: str | None = None
    retired: bool = False


@dataclass
class PassSummary:
    polls: list[PollOutcome] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    delivery: DispatchSummary = field(default_factory=DispatchSummary)
    health: list[str] = field(default_factory=list)  # feed problems that started or healed

    @property
    def feeds_polled(self) -> int:
        return len(self.polls)

    def poll_counts(self) -> Counter[str]:
        return Counter(poll.status for poll in self.polls)

    def check_counts(self) -> Counter[str]:
        return Counter(check.status for check in self.checks)

    @property
    def alerts(self) -> int:
        return sum(check.alerts for check in self.checks)


# -------------------------------------------------------------------------------- tasks


async def poll_feed(ctx: Context, feed_name: str) -> PollOutcome:
    """Poll one feed (see :func:`_poll_feed`), timed and counted for the metrics.

    Never raises but StoreError: whatever else goes wrong is a failed poll on the feed's
    row (error streak, back-off, last error), which health alerts read. Unrecorded, a crash
    would repeat at the normal interval forever, unseen but in the log.
    """
    started = time.perf_counter()
    try:
        outcome = await _poll_feed(ctx, feed_name)
    except StoreError:
        raise  # the database is gone or full: nothing can be recorded (see _bounded)
    except Exception as exc:  # a bug, or input nothing foresaw: this feed only
        outcome = _poll_crashed(ctx, feed_name, exc)
    elapsed = time.perf_counter() - started
    metrics.poll_done(feed_name, outcome.status, elapsed, outcome.http_status)
    return outcome


async def _poll_feed(ctx: Context, feed_name: str) -> PollOutcome:
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
    if _backing_off(state, now, interval):
        return PollOutcome(feed_name, "skipped")
    result = None
    try:
        result = await ctx.fetcher.fetch(
            feed.url, etag=state.etag, last_modified=state.last_modified
        )
        if result.not_modified:
            ctx.store.record_poll(
                feed_name,
                PollRecord(
                    now,
                    now + interval,
                    status=304,
                    etag=result.etag,
                    last_modified=result.last_modified,
                    body_digest=state.body_digest,  # the body it stands for is unchanged
                ),
            )
            return PollOutcome(feed_name, "not_modified", http_status=304)
        digest = feed_digest(result.content, url=feed.url, headers=result.headers)
        if digest == state.body_digest:
            return _poll_unchanged(ctx, feed_name, result, digest, now + interval)
        parsed = await parse_off_loop(result.content, url=feed.url, headers=result.headers)
    except (FetchError, FeedError) as exc:
        # A feed that does not parse still answered: keep its HTTP status on the row.
        status = exc.status if isinstance(exc, FetchError) else None
        if result is not None and status is None:
            status = result.status
        return _poll_failed(ctx, state, exc, status, now, interval)
    if parsed.warning:
        log.warning("feed %s: malformed, used what could be read: %s", feed_name, parsed.warning)
    taken = await asyncio.to_thread(
        ctx.store.take_entries,
        feed_name,
        parsed.entries,
        now,
        max_new=MAX_NEW_ARTICLES_PER_POLL,
        stop=lambda: ctx.stopping,
    )
    # Entries left for later must be fetched and parsed again: no cache keys (a 304 would
    # hide them) and no digest (the same bytes would be skipped) until all are taken.
    complete = not taken.deferred
    ctx.store.record_poll(
        feed_name,
        PollRecord(
            now,
            now + interval,
            status=result.status,
            etag=result.etag if complete else None,
            last_modified=result.last_modified if complete else None,
            title=parsed.title,
            entries=len(parsed.entries),
            body_digest=digest if complete else None,
        ),
    )
    if state.error_streak:
        log.info("feed %s: recovered after %d failed polls", feed_name, state.error_streak)
    log.info("feed %s: %d entries, %d new articles", feed_name, len(parsed.entries), taken.new)
    if taken.deferred:
        log.info("feed %s: %d new entries left for the next polls", feed_name, taken.deferred)
    return PollOutcome(
        feed_name,
        "ok",
        len(parsed.entries),
        taken.new,
        warning=parsed.warning,
        http_status=result.status,
    )


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
    """The same bytes as the last poll, all of whose entries are tracked: nothing to parse."""
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
    log.info("feed %s: the same %d bytes as the last poll: not parsed", feed_name, size)
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
    reason = _error_text(exc)
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


def _error_text(exc: Exception) -> str:
    """What a failed poll or check records: watcher's own errors say what went wrong;
    anything else is a bug, named with its type (a bare KeyError says nothing)."""
    if isinstance(exc, WatcherError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"


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


async def check_article(ctx: Context, article_id: int) -> CheckOutcome:
    """Check one article (see :func:`_check_article`), timed and counted for the metrics."""
    started = time.perf_counter()
    try:
        outcome = await _check_article(ctx, article_id)
    except StoreError:
        raise  # as in poll_feed
    except Exception as exc:  # a bug, or input nothing foresaw: recorded as a failed check
        outcome = _check_crashed(ctx, article_id, exc)
    metrics.check_done(outcome.status, time.perf_counter() - started, outcome.alerts)
    return outcome


async def _check_article(ctx: Context, article_id: int) -> CheckOutcome:
    """Fetch, extract and compare one article; store a version and its alerts if it changed."""
    article = ctx.store.article(article_id)
    settings = article_settings(ctx.config, article.feeds)
    now = ctx.clock()
    next_check = next_check_time(article.first_seen, now, settings.recheck)
    try:
        page = await obtain_page(ctx, article, settings)
    except WatcherError as exc:
        return _check_failed(ctx, article, exc, now, next_check)
    if isinstance(page, Validators):  # 304: the page has not changed since the last fetch
        ctx.store.record_check(
            article_id,
            CheckRecord(now, next_check, etag=page.etag, last_modified=page.last_modified),
        )
        return CheckOutcome(article_id, article.url, "unchanged", retired=next_check is None)
    # Loaded only now: most re-checks end in a 304 above and need no stored text.
    stored = article.current_version is not None
    history = ctx.store.versions(article_id, newest=RECENT_VERSIONS) if stored else []
    furniture = ctx.store.site_furniture(article.host)
    verdict = judge(page, history, article, furniture, ctx.rules, _tags(ctx.config, article.feeds))
    if stored:
        verdict = _older_duplicate(ctx, article_id, verdict)
    return _record(ctx, article, page, verdict, now, next_check)


def _check_crashed(ctx: Context, article_id: int, exc: Exception) -> CheckOutcome:
    """Record an unexpected exception of a check like any failed check."""
    log.debug("article %s: internal error", article_id, exc_info=True)
    article = ctx.store.article(article_id)
    now = ctx.clock()
    schedule = article_settings(ctx.config, article.feeds).recheck
    return _check_failed(ctx, article, exc, now, next_check_time(article.first_seen, now, schedule))


def _check_failed(
    ctx: Context,
    article: ArticleState,
    exc: Exception,
    now: datetime,
    next_check: datetime | None,
) -> CheckOutcome:
    error = _error_text(exc)
    log.warning("article %s: check failed: %s", article.url, error)
    ctx.store.record_check(article.id, CheckRecord(now, next_check, error=error))
    return CheckOutcome(article.id, article.url, "failed", error=error, retired=next_check is None)


def _record(
    ctx: Context,
    article: ArticleState,
    page: Page,
    verdict: Judgement,
    now: datetime,
    next_check: datetime | None,
) -> CheckOutcome:
    url = article.url
    if verdict.error:
        log.warning("article %s: check failed: %s", url, verdict.error)
    record = CheckRecord(
        now,
        next_check,
        error=verdict.error,
        etag=page.etag,
        last_modified=page.last_modified,
        version=verdict.version,
        alerts=verdict.alerts,
        seen_again=verdict.seen_again,
    )
    stored = ctx.store.record_check(article.id, record)
    status = verdict.status if stored is not None or verdict.version is None else "unchanged"
    if stored is not None and verdict.learn_keys:
        ctx.store.learn_site_lines(article.host, verdict.learn_keys)
    if stored is not None:
        log.info(
            "article %s: %s, version %d, %d alerts", url, status, stored.number, len(verdict.alerts)
        )
    return CheckOutcome(
        article.id,
        url,
        status,
        version=stored.number if stored else verdict.seen_again,
        alerts=len(verdict.alerts) if stored else 0,
        error=verdict.error,
        retired=next_check is None,
    )


def _older_duplicate(ctx: Context, article_id: int, verdict: Judgement) -> Judgement:
    """Content equal to a version older than the recent window is a revert too."""
    if verdict.version is None:
        return verdict
    older = ctx.store.version_by_hash(article_id, verdict.version.content_hash)
    if older is None:
        return verdict
    return Judgement(status="seen_again", seen_again=older.number)


async def obtain_page(
    ctx: Context, article: ArticleState, settings: FeedSettings
) -> Page | Validators:
    """The article's current text: from its page, else (first time only) from the feed entry.

    Returns the validators still in force when the page answered 304 (the stored ones, less
    any not valid to send: see :mod:`watcher.pipeline.headers`). Once a version came from the
    page, a failed fetch or extraction is a failed check: falling back to the feed's summary
    would look like an edit.
    """
    stored = article.current_version is not None
    if settings.fetch_article and article.link:
        try:
            return await _page_from_web(ctx, article, conditional=stored)
        except (FetchError, ExtractError) as exc:
            if stored and any(v.source == "page" for v in ctx.store.versions(article.id)):
                raise
            log.info("article %s: using the feed's text instead of the page: %s", article.url, exc)
    return _page_from_entry(article)


async def _page_from_web(
    ctx: Context, article: ArticleState, *, conditional: bool
) -> Page | Validators:
    assert article.link is not None
    result = await ctx.fetcher.fetch(
        article.link,
        etag=article.etag if conditional else None,
        last_modified=article.last_modified if conditional else None,
        check_url=link_guard(ctx.config, article.feeds),
    )
    if result.not_modified:
        return Validators(result.etag, result.last_modified)
    extracted = extract_article(
        result.content, result.final_url, content_type=result.headers.get("content-type")
    )
    return Page(
        title=extracted.title or article.entry_title,
        text=extracted.text,
        source="page",
        etag=result.etag,
        last_modified=result.last_modified,
    )


def link_guard(config: Config, feeds: Iterable[str]) -> URLCheck:
    """The check of every hop of a link from these feeds (redirects included).

    Article links are third-party input: they may carry credentials only where the feed's
    own URL does (see :func:`~watcher.pipeline.feeds.userinfo_allowed`), and by default they may
    reach only public addresses, plus what the feeds' ``allow_hosts`` permit (see
    :mod:`watcher.pipeline.netguard`; ``allow_private_networks`` turns that part off).
    """
    feed_urls = [feed.url for feed in config.configured_feeds(feeds) if feed is not None]
    ssrf = None if config.allow_private_networks else url_guard(config.allow_list_for(feeds))

    async def check(url: str) -> None:
        if not any(userinfo_allowed(url, feed_url) for feed_url in feed_urls or [""]):
            raise Refused(url, "the link carries credentials the feed's own URL does not")
        if ssrf is not None:
            await ssrf(url)

    return check


def _page_from_entry(article: ArticleState) -> Page:
    text = fragment_to_text(article.entry_content)
    if not text.strip() and not article.entry_title.strip():
        raise ExtractError(article.url, "the feed entry has no text and the page is unavailable")
    return Page(title=article.entry_title, text=text, source="feed")


# ------------------------------------------------------------------------ the schedule


def next_check_time(
    first_seen: datetime, now: datetime, steps: Iterable[RecheckStep]
) -> datetime | None:
    """When to look again: the interval of the first step the article's age is under.

    None once the article is older than the last step's ``until``: it retires.
    """
    age = now - first_seen
    for step in steps:
        if age < step.until:
            return now + step.every
    return None


def article_settings(config: Config, feeds: Iterable[str]) -> FeedSettings:
    """Settings of the first configured feed the article appeared in (else the defaults)."""
    configured = [feed for feed in config.configured_feeds(feeds) if feed is not None]
    return config.settings_for(configured[0] if configured else None)


def _tags(config: Config, feeds: Iterable[str]) -> frozenset[str]:
    configured = config.configured_feeds(feeds)
    return frozenset(tag for feed in configured if feed is not None for tag in feed.tags)


# --------------------------------------------------------------------------- one pass


async def run_pass(
    ctx: Context,
    *,
    feeds: list[str] | None = None,
    recheck_all: bool = False,
    progress: Progress | None = None,
) -> PassSummary:
    """Poll the feeds, then check every due article (all tracked ones with ``recheck_all``)."""
    names = feeds if feeds is not None else [feed.name for feed in ctx.config.feeds]
    summary = PassSummary()
    summary.polls = await _bounded(ctx, "feeds", names, poll_feed, progress)
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
    if any(deleted.values()):
        log.info(
            "prune: %d retired articles and %d sent-message records deleted",
            deleted["articles"],
            deleted["sent_messages"],
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
