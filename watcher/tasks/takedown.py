"""The take-down and move part of ``check_article`` (the judgement is
:mod:`watcher.pipeline.takedown`): what a gone answer records, and the events a live page
raises (restored, moved)."""

from __future__ import annotations

import logging
from datetime import datetime

from watcher.config.models import Config
from watcher.pipeline.fetch import FetchResult
from watcher.pipeline.takedown import (
    FrontPageRedirect,
    Gone,
    front_page_redirect,
    move,
    moved_to,
    removal,
    restoration,
)
from watcher.records import ArticleState, CheckRecord, NewArticleEvent
from watcher.tasks.context import Context
from watcher.tasks.outcomes import CheckOutcome

log = logging.getLogger(__name__)


def link_fate(config: Config, article: ArticleState, result: FetchResult) -> str | None:
    """Where a permanent redirect moved the article (None: it did not move). Raises
    :class:`FrontPageRedirect` when the link now leads to the site's front page."""
    link = article.link or article.url
    feed_urls = [feed.url for feed in config.configured_feeds(article.feeds) if feed is not None]
    if front_page_redirect(link, result, feed_urls):
        raise FrontPageRedirect(link, result.final_url)
    return moved_to(link, result)


def gone_check(
    ctx: Context,
    article: ArticleState,
    gone: Gone,
    tags: frozenset[str],
    now: datetime,
    next_check: datetime | None,
) -> CheckOutcome | None:
    """Record a gone answer of an article that is removed now or was already; None for one
    that is not removed yet: that answer is a failed check (the caller records it, with
    ``gone``). A removed article keeps its schedule, in case it comes back."""
    event = removal(article, gone, last_seen(ctx, article), ctx.rules, tags)
    if event is None and not article.removed:
        return None
    record = CheckRecord(
        now,
        next_check,
        etag=article.etag,
        last_modified=article.last_modified,
        gone=True,
        events=(event,) if event is not None else (),
    )
    ctx.store.record_check(article.id, record)
    if event is not None:
        log.info("article %s: removed: %s, %d alerts", article.url, event.reason, len(event.alerts))
    return CheckOutcome(
        article.id,
        article.url,
        "removed",
        alerts=len(event.alerts) if event is not None else 0,
        retired=next_check is None,
        events=("removed",) if event is not None else (),
    )


def page_events(
    ctx: Context,
    article: ArticleState,
    tags: frozenset[str],
    page: tuple[str, str] | None = None,
    moved: str | None = None,
) -> tuple[NewArticleEvent, ...]:
    """The events of a check that found the article on its page (``page``: its title and
    text; None after a 304, when it is the text last seen): restored, when it was removed;
    moved, when a permanent redirect led there."""
    events: list[NewArticleEvent] = []
    if article.removed:
        restored = restoration(article, page or last_seen(ctx, article), ctx.rules, tags)
        if restored is not None:
            log.info("article %s: restored", article.url)
            events.append(restored)
    if moved is not None:
        log.info("article %s: moved to %s", article.url, moved)
        events.append(move(article.link or article.url, moved, article.url))
    return tuple(events)


def last_seen(ctx: Context, article: ArticleState) -> tuple[str, str]:
    """The title and text of the version the page showed last (the feed entry's if none)."""
    if article.current_version is not None:
        for version in reversed(ctx.store.versions(article.id, newest=10)):
            if version.number == article.current_version:
                return version.title, version.text
    return article.entry_title, article.entry_content
