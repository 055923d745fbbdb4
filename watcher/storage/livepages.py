"""Each article's recent check outcomes (see :mod:`watcher.pipeline.livepages`): appended as
each check is recorded, and read back for the live pages ``watcher status`` and ``watcher
feeds`` list. A mixin of :class:`watcher.storage.store.Store`."""

from __future__ import annotations

from collections import defaultdict
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, func, select

from watcher.config.live import MAX_CHECKS
from watcher.records import CheckRecord
from watcher.storage.schema import ArticleFeedRow, ArticleRow, FeedRow

_ARTICLE = ArticleRow.__table__  # type: ignore[attr-defined]
_ARTICLE_FEED = ArticleFeedRow.__table__  # type: ignore[attr-defined]
_FEED = FeedRow.__table__  # type: ignore[attr-defined]


def recorded_outcome(check: CheckRecord, current: int | None) -> dict[str, Any]:
    """The ``article`` values that add this re-check to its outcomes (``current``: the number
    of the version it stored, if it stored one): ``c`` when it found a text other than the
    one shown before (a new version, or one gone back to), ``-`` when the same. The first
    check (version 1) and failed checks are not outcomes."""
    if check.error is not None or current == 1:
        return {}
    changed = check.seen_again is not None or check.version is not None
    column = _ARTICLE.c.recent_checks
    # One character added at a time, so dropping the oldest keeps at most MAX_CHECKS.
    kept = case((func.length(column) >= MAX_CHECKS, func.substr(column, 2)), else_=column)
    return {"recent_checks": kept + ("c" if changed else "-")}


@dataclass(frozen=True)
class RecentChecks:
    """A tracked article that changed on some recent checks, with its outcomes."""

    id: int
    url: str
    title: str
    recent_checks: str
    feeds: tuple[str, ...]


class LivePageQueries:
    """Articles by their recent outcomes. Mixed into Store."""

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def changing_articles(self, min_changes: int) -> list[RecentChecks]:
        """Tracked articles with at least ``min_changes`` changes among their recent
        outcomes (the caller decides, over its window, which are live)."""
        pattern = "%" + "c%" * min_changes
        query = (
            select(_ARTICLE.c.id, _ARTICLE.c.url, _ARTICLE.c.entry_title, _ARTICLE.c.recent_checks)
            .where(_ARTICLE.c.status == "tracking", _ARTICLE.c.recent_checks.like(pattern))
            .order_by(_ARTICLE.c.id)
        )
        with self._transaction() as connection:
            rows = connection.execute(query).all()
            feeds = _feeds_of(connection, [row.id for row in rows])
        return [
            RecentChecks(row.id, row.url, row.entry_title, row.recent_checks, feeds[row.id])
            for row in rows
        ]


def _feeds_of(connection: Connection, ids: list[int]) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = defaultdict(list)
    for start in range(0, len(ids), 500):
        query = (
            select(_ARTICLE_FEED.c.article_id, _FEED.c.name)
            .join(_FEED, _FEED.c.id == _ARTICLE_FEED.c.feed_id)
            .where(_ARTICLE_FEED.c.article_id.in_(ids[start : start + 500]))
            .order_by(_ARTICLE_FEED.c.first_seen, _FEED.c.name)
        )
        for article_id, name in connection.execute(query):
            found[article_id].append(name)
    return {article_id: tuple(found[article_id]) for article_id in ids}
