"""Feed health: which feeds have a problem now, judged from facts the store gathers.

Pure: no I/O. Three problems, each raised once and healed once (see ``FeedHealthRow``):

- ``errors``: the feed failed ``health.error_streak`` polls in a row, or answered 410 Gone;
- ``stale``: no new article for the feed's ``stale_after`` (when set);
- ``checks``: checks are failing for most of the feed's articles checked within
  ``health.window`` — the page layout changed under the extractor, or the site blocks us.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from watcher.config.models import Config
from watcher.records import FeedHealthFacts, HealthProblem


def current_problems(
    config: Config, facts: Iterable[FeedHealthFacts], now: datetime
) -> list[HealthProblem]:
    """The problems of every configured feed now (a feed removed from the config has none)."""
    configured = config.feeds_by_name
    found: list[HealthProblem] = []
    for fact in facts:
        feed = configured.get(fact.feed)
        if feed is None:
            continue
        stale_after = config.settings_for(feed).stale_after
        for problem, reason in (
            ("errors", _errors(config, fact)),
            ("stale", _stale(fact, stale_after, now)),
            ("checks", _checks(config, fact)),
        ):
            if reason is not None:
                found.append(HealthProblem(fact.feed, problem, reason))
    return found


def _errors(config: Config, fact: FeedHealthFacts) -> str | None:
    if fact.disabled:
        return f"the feed is gone (HTTP 410) and is no longer polled: {fact.last_error}"
    if fact.error_streak >= config.health.error_streak:
        return f"{fact.error_streak} failed polls in a row; last: {fact.last_error}"
    return None


def _stale(fact: FeedHealthFacts, stale_after: timedelta | None, now: datetime) -> str | None:
    # Judged only on a feed that answers: a failing one is the `errors` problem.
    if stale_after is None or fact.newest_article_at is None or fact.error_streak:
        return None
    quiet = now - fact.newest_article_at
    if quiet < stale_after:
        return None
    return f"no new article for {_days_hours(quiet)} (stale_after: {_days_hours(stale_after)})"


def _checks(config: Config, fact: FeedHealthFacts) -> str | None:
    health = config.health
    if fact.checked < health.min_articles or fact.failing < health.failing_share * fact.checked:
        return None
    return (
        f"checks failing for {fact.failing} of {fact.checked} articles checked in the last "
        f"{_days_hours(health.window)} (a site redesign, or the site blocking watcher?)"
    )


def _days_hours(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    if hours < 48:
        return f"{hours} h" if hours else f"{int(span.total_seconds() // 60)} min"
    return f"{hours // 24} d {hours % 24} h"
