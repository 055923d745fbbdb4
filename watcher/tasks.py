"""The verbs: ``poll_feed``, ``check_article`` and a whole ``run_pass``.

This is the only module that knows the pipeline order (fetch → extract → normalise → compare
→ store → diff → rules → alert rows). Task functions take a :class:`Context` and ids or names,
are idempotent (re-running one after a crash stores nothing twice: see :mod:`watcher.schema`)
and contain no scheduler code, so the embedded scheduler and a queue worker can both call them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from watcher.clock import utc_now
from watcher.config import Config, FeedSettings, RecheckStep
from watcher.errors import ExtractError, FeedError, FetchError, StoreError, WatcherError
from watcher.extract import extract_article, fragment_to_text
from watcher.feeds import parse_feed
from watcher.fetch import Fetcher, FetchLimits, URLCheck
from watcher.judge import Judgement, Page, judge
from watcher.netguard import url_guard
from watcher.records import ArticleState, CheckRecord, PollRecord
from watcher.rules import Rule, compile_rules
from watcher.store import Store

log = logging.getLogger(__name__)

# How many recent versions a new text is compared with (reverts and A/B flip-flops).
RECENT_VERSIONS = 10

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
    clock: Callable[[], datetime] = utc_now


@asynccontextmanager
async def open_context(config: Config, store: Store | None = None) -> AsyncIterator[Context]:
    own_store = store is None
    store = store or Store.open(config.database_url())
    # No guard by default: feed URLs are the user's own. Article fetches pass theirs.
    fetcher = Fetcher(fetch_limits(config))
    try:
        store.sync_feeds((feed.name, feed.url) for feed in config.feeds)
        yield Context(config, store, fetcher, compile_rules(config.rules))
    finally:
        await fetcher.aclose()
        if own_store:
            store.close()


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
    status: str  # ok | not_modified | failed
    entries: int = 0
    new_articles: int = 0
    error: str | None = None
    warning: str | None = None


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
    """Fetch one feed (conditional GET), parse it and track every entry as an article."""
    feed = ctx.config.feed(feed_name)
    state = ctx.store.feed_state(feed_name)
    now = ctx.clock()
    next_poll = now + ctx.config.settings_for(feed).interval
    try:
        result = await ctx.fetcher.fetch(
            feed.url, etag=state.etag, last_modified=state.last_modified
        )
        if result.not_modified:
            ctx.store.record_poll(
                feed_name,
                PollRecord(
                    now, next_poll, status=304, etag=result.etag, last_modified=result.last_modified
                ),
            )
            return PollOutcome(feed_name, "not_modified")
        parsed = parse_feed(result.content, url=feed.url, headers=result.headers)
    except (FetchError, FeedError) as exc:
        log.warning("feed %s: %s", feed_name, exc)
        # A feed that does not parse still answered: keep its HTTP status on the row.
        status = exc.status if isinstance(exc, FetchError) else result.status
        ctx.store.record_poll(feed_name, PollRecord(now, next_poll, status=status, error=str(exc)))
        return PollOutcome(feed_name, "failed", error=str(exc))
    if parsed.warning:
        log.warning("feed %s: malformed, used what could be read: %s", feed_name, parsed.warning)
    new = ctx.store.add_entries(feed_name, parsed.entries, now)
    ctx.store.record_poll(
        feed_name,
        PollRecord(
            now,
            next_poll,
            status=result.status,
            etag=result.etag,
            last_modified=result.last_modified,
            title=parsed.title,
            entries=len(parsed.entries),
        ),
    )
    log.info("feed %s: %d entries, %d new articles", feed_name, len(parsed.entries), new)
    return PollOutcome(feed_name, "ok", len(parsed.entries), new, warning=parsed.warning)


async def check_article(ctx: Context, article_id: int) -> CheckOutcome:
    """Fetch, extract and compare one article; store a version and its alerts if it changed."""
    article = ctx.store.article(article_id)
    settings = article_settings(ctx.config, article.feeds)
    now = ctx.clock()
    next_check = next_check_time(article.first_seen, now, settings.recheck)
    try:
        page = await obtain_page(ctx, article, settings)
    except WatcherError as exc:
        log.warning("article %s: check failed: %s", article.url, exc)
        ctx.store.record_check(article_id, CheckRecord(now, next_check, error=str(exc)))
        return CheckOutcome(article_id, article.url, "failed", error=str(exc))
    if page is None:  # 304: the page has not changed since the last fetch
        ctx.store.record_check(
            article_id,
            CheckRecord(now, next_check, etag=article.etag, last_modified=article.last_modified),
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


async def obtain_page(ctx: Context, article: ArticleState, settings: FeedSettings) -> Page | None:
    """The article's current text: from its page, else (first time only) from the feed entry.

    Returns None when the page answered 304. Once a version came from the page, a failed
    fetch or extraction is a failed check: falling back to the feed's summary would look
    like an edit.
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


async def _page_from_web(ctx: Context, article: ArticleState, *, conditional: bool) -> Page | None:
    assert article.link is not None
    result = await ctx.fetcher.fetch(
        article.link,
        etag=article.etag if conditional else None,
        last_modified=article.last_modified if conditional else None,
        check_url=link_guard(ctx.config, article.feeds),
    )
    if result.not_modified:
        return None
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


def link_guard(config: Config, feeds: Iterable[str]) -> URLCheck | None:
    """The SSRF guard for a link from these feeds; None when the config turns it off.

    Article links are third-party input: by default they may reach only public addresses,
    plus what the feeds' ``allow_hosts`` permit (see :mod:`watcher.netguard`).
    """
    if config.allow_private_networks:
        return None
    return url_guard(config.allow_list_for(feeds))


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
    summary.polls = await _bounded(
        ctx,
        "feeds",
        names,
        poll_feed,
        progress,
        on_crash=lambda name, exc: PollOutcome(name, "failed", error=f"internal error: {exc}"),
    )
    due = ctx.store.due_article_ids(ctx.clock(), feeds=feeds, everything=recheck_all)
    summary.checks = await check_articles(ctx, due, progress)
    return summary


async def check_due(ctx: Context, *, batch: int) -> list[CheckOutcome]:
    """Check up to ``batch`` articles whose re-check is due, oldest due first."""
    return await check_articles(ctx, ctx.store.due_article_ids(ctx.clock(), limit=batch))


async def check_articles(
    ctx: Context, article_ids: list[int], progress: Progress | None = None
) -> list[CheckOutcome]:
    return await _bounded(
        ctx,
        "articles",
        article_ids,
        check_article,
        progress,
        on_crash=lambda i, exc: CheckOutcome(i, "", "failed", error=f"internal error: {exc}"),
    )


async def _bounded(
    ctx: Context,
    stage: str,
    items: list[K],
    task: Callable[[Context, K], Awaitable[T]],
    progress: Progress | None,
    on_crash: Callable[[K, Exception], T],
) -> list[T]:
    """Run ``task`` on every item, ``fetch.concurrency`` at once; a crash is logged, not fatal."""
    semaphore = asyncio.Semaphore(ctx.config.fetch.concurrency)
    done = 0

    async def run(item: K) -> T:
        nonlocal done
        async with semaphore:
            try:
                result = await task(ctx, item)
            except StoreError:
                raise  # the database is gone or full: every other job would fail the same way
            except Exception as exc:  # one bad feed or page must never stop the others
                log.exception("%s: %s crashed", stage, item)
                result = on_crash(item, exc)
        done += 1
        if progress is not None:
            progress(stage, done, len(items))
        return result

    if progress is not None:
        progress(stage, 0, len(items))
    return list(await asyncio.gather(*(run(item) for item in items)))
