"""``check_article``: fetch, extract and compare one article; store a version and its alerts
if it changed; and when to look again."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from watcher import metrics
from watcher.config.models import Config, FeedSettings, RecheckStep
from watcher.errors import (
    ExtractError,
    FetchError,
    StoreError,
    WatcherError,
)
from watcher.pipeline.extract import fragment_to_text
from watcher.pipeline.fetch import StatusError, URLCheck
from watcher.pipeline.headers import Validators
from watcher.pipeline.judge import Judgement, Page, judge
from watcher.pipeline.livepages import mark_live
from watcher.pipeline.netguard import Refused, url_guard
from watcher.pipeline.takedown import gone_answer
from watcher.pipeline.urls import userinfo_allowed
from watcher.records import (
    ArticleState,
    CheckRecord,
    NewArticleEvent,
    RawExchange,
    VersionRecord,
    WarcRef,
)
from watcher.tasks.context import Context
from watcher.tasks.outcomes import CheckOutcome, error_text
from watcher.tasks.takedown import gone_check, link_fate, page_events

log = logging.getLogger(__name__)

# How many recent versions a new text is compared with (reverts and A/B flip-flops).
RECENT_VERSIONS = 10


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
    tags = _tags(ctx.config, article.feeds)
    try:
        page, fallback = await obtain_page(ctx, article, settings)
    except WatcherError as exc:
        gone = gone_answer(exc)  # a 404, 410 or redirect to the front page
        if gone and (outcome := gone_check(ctx, article, gone, tags, now, next_check)):
            return outcome
        return _check_failed(ctx, article, exc, now, next_check, gone=gone is not None)
    if isinstance(page, Validators):  # 304: the page has not changed since the last fetch
        events = page_events(ctx, article, tags)
        record = CheckRecord(
            now, next_check, etag=page.etag, last_modified=page.last_modified, events=events
        )
        ctx.store.record_check(article_id, record)
        return CheckOutcome(
            article_id,
            article.url,
            "unchanged",
            retired=next_check is None,
            events=tuple(e.kind for e in events),
        )
    # Loaded only now: most re-checks end in a 304 above and need no stored text.
    stored = article.current_version is not None
    history = ctx.store.versions(article_id, newest=RECENT_VERSIONS) if stored else []
    furniture = ctx.store.site_furniture(article.host)
    verdict = judge(page, history, article, furniture, ctx.rules, tags)
    if stored:
        verdict = _older_duplicate(ctx, page, history, article, verdict)
    events = (
        ()
        if verdict.error
        else page_events(ctx, article, tags, (page.title, page.text), page.moved_to)
    )
    outcome = _record(ctx, article, page, verdict, now, next_check, events)
    stored_text = outcome.status in ("new", "changed")
    return replace(outcome, fallback=fallback) if fallback and stored_text else outcome


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
    *,
    gone: bool = False,
) -> CheckOutcome:
    error = error_text(exc)
    log.warning("article %s: check failed: %s", article.url, error)
    if isinstance(exc, StatusError):  # the error page is evidence too
        archive_original(ctx, exc.raw, now, error)
    ctx.store.record_check(article.id, CheckRecord(now, next_check, error=error, gone=gone))
    return CheckOutcome(article.id, article.url, "failed", error=error, retired=next_check is None)


def _record(
    ctx: Context,
    article: ArticleState,
    page: Page,
    verdict: Judgement,
    now: datetime,
    next_check: datetime | None,
    events: tuple[NewArticleEvent, ...] = (),
) -> CheckOutcome:
    url = article.url
    if verdict.error:
        log.warning("article %s: check failed: %s", url, verdict.error)
    # A live page's alerts are marked so: the outbox bundles them per article.
    alerts = mark_live(verdict.alerts, article.recent_checks, ctx.config.live_pages)
    record = CheckRecord(
        now,
        next_check,
        error=verdict.error,
        etag=page.etag,
        last_modified=page.last_modified,
        version=verdict.version,
        alerts=alerts if verdict.version is not None else (),
        seen_again=verdict.seen_again,
        # On disk (fsynced) before the version that names it is committed.
        warc=_archive_verdict(ctx, page, verdict, now),
        revert_alerts=alerts if verdict.seen_again is not None else (),
        events=events,
        host=article.host,
        line_keys=verdict.learn_keys,
    )
    stored = ctx.store.record_check(article.id, record)
    status = verdict.status if stored is not None or verdict.version is None else "unchanged"
    if stored is not None:
        log.info(
            "article %s: %s, version %d, %d alerts", url, status, stored.number, len(verdict.alerts)
        )
    alert_count = len(verdict.alerts) if stored or verdict.seen_again is not None else 0
    return CheckOutcome(
        article.id,
        url,
        status,
        version=stored.number if stored else verdict.seen_again,
        alerts=alert_count + sum(len(e.alerts) for e in events),
        error=verdict.error,
        retired=next_check is None,
        events=tuple(e.kind for e in events),
    )


def _older_duplicate(
    ctx: Context,
    page: Page,
    history: list[VersionRecord],
    article: ArticleState,
    verdict: Judgement,
) -> Judgement:
    """Content equal to a version older than the recent window is a revert too: judged
    again with that version in the history."""
    if verdict.version is None:
        return verdict
    older = ctx.store.version_by_hash(article.id, verdict.version.content_hash)
    if older is None:
        return verdict
    furniture = ctx.store.site_furniture(article.host)
    tags = _tags(ctx.config, article.feeds)
    return judge(page, [older, *history], article, furniture, ctx.rules, tags)


async def obtain_page(
    ctx: Context, article: ArticleState, settings: FeedSettings
) -> tuple[Page | Validators, str | None]:
    """The article's current text: from its page, else (first time only) from the feed entry,
    with why the page was not used (a key of FALLBACKS) when it was not.

    Returns the validators still in force when the page answered 304 (the stored ones, less
    any not valid to send: see :mod:`watcher.pipeline.headers`). Once a version came from the
    page, a failed fetch or extraction is a failed check: falling back to the feed's summary
    would look like an edit.
    """
    stored = article.current_version is not None
    if settings.fetch_article and article.link:
        try:
            return await _page_from_web(ctx, article, conditional=stored), None
        except (FetchError, ExtractError) as exc:
            if stored and any(v.source == "page" for v in ctx.store.versions(article.id)):
                raise
            log.info("article %s: using the feed's text instead of the page: %s", article.url, exc)
            reason = (
                "refused"
                if isinstance(exc, Refused)
                else ("fetch" if isinstance(exc, FetchError) else "extract")
            )
            return _page_from_entry(article), reason
    return _page_from_entry(article), None


async def _page_from_web(
    ctx: Context, article: ArticleState, *, conditional: bool
) -> Page | Validators:
    assert article.link is not None
    result = await ctx.fetcher.fetch(
        article.link,
        etag=article.etag if conditional else None,
        last_modified=article.last_modified if conditional else None,
        check_url=link_guard(ctx.config, article.feeds),
        keep_raw=ctx.archive is not None,
    )
    if result.not_modified:
        return Validators(result.etag, result.last_modified)
    moved = link_fate(ctx.config, article, result)  # raises on a redirect to the front page
    try:
        extracted = await ctx.cpu.extract(
            result.content, result.final_url, result.headers.get("content-type")
        )
    except ExtractError as exc:
        archive_original(ctx, result.raw, ctx.clock(), error_text(exc))
        raise
    return Page(
        title=extracted.title or article.entry_title,
        text=extracted.text,
        extra=extracted.extra,
        source="page",
        etag=result.etag,
        last_modified=result.last_modified,
        raw=result.raw,
        moved_to=moved,
    )


def _archive_verdict(ctx: Context, page: Page, verdict: Judgement, now: datetime) -> WarcRef | None:
    if verdict.version is not None:
        return archive_original(ctx, page.raw, now, None)
    if verdict.error:
        archive_original(ctx, page.raw, now, verdict.error)
    return None


def archive_original(
    ctx: Context, raw: RawExchange | None, now: datetime, failed: str | None
) -> WarcRef | None:
    """Write a page's response to the WARC archive (when it is on and the page came from
    the web): a new version's, or a failed one's, flagged. Returns where a version's is."""
    if ctx.archive is None or raw is None:
        return None
    ref = ctx.archive.write(raw, now, failed=failed)
    return None if failed is not None else ref


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
