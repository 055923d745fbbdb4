"""Listing and searching articles (``watcher articles``): a mixin of
:class:`watcher.storage.store.Store`, read-only."""

from __future__ import annotations

from collections import defaultdict
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, Subquery, func, or_, select

from watcher.records import ArticleSummary
from watcher.storage.schema import AlertRow, ArticleFeedRow, ArticleRow, FeedRow, VersionRow

_ARTICLE = ArticleRow.__table__  # type: ignore[attr-defined]
_ARTICLE_FEED = ArticleFeedRow.__table__  # type: ignore[attr-defined]
_FEED = FeedRow.__table__  # type: ignore[attr-defined]
_VERSION = VersionRow.__table__  # type: ignore[attr-defined]
_ALERT = AlertRow.__table__  # type: ignore[attr-defined]


class ArticleListing:
    """Articles with their version and alert counts. Mixed into Store."""

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def list_articles(
        self,
        *,
        feeds: list[str] | None = None,
        search: str | None = None,
        changed_since: datetime | None = None,
        limit: int | None = None,
    ) -> list[ArticleSummary]:
        """Articles, the most recently changed last: only those of ``feeds``, those whose
        headline or text (in any stored version) contains ``search`` (case-insensitive), those
        with a version stored since ``changed_since``."""
        versions = _version_counts()
        query = _summary_query(versions)
        if feeds:
            query = query.where(_ARTICLE.c.id.in_(_in_feeds(feeds)))
        if search:
            query = query.where(_mentions(search))
        if changed_since is not None:
            query = query.where(versions.c.last_changed >= changed_since)
        order = func.coalesce(versions.c.last_changed, _ARTICLE.c.first_seen)
        query = query.order_by(order.desc(), _ARTICLE.c.id.desc()).limit(limit)
        with self._transaction() as connection:
            rows = connection.execute(query).mappings().all()
            ids = [row["id"] for row in rows]
            feed_names, alerts = _feeds_of(connection, ids), _alerts_of(connection, ids)
        return [
            ArticleSummary(
                **row, feeds=tuple(feed_names.get(row["id"], ())), alerts=alerts.get(row["id"], 0)
            )
            for row in reversed(rows)
        ]


def _version_counts() -> Subquery:
    """Per article: how many versions, and when the last one was stored."""
    return (
        select(
            _VERSION.c.article_id,
            func.count().label("versions"),
            func.max(_VERSION.c.fetched_at).label("last_changed"),
        )
        .group_by(_VERSION.c.article_id)
        .subquery()
    )


def _summary_query(versions: Subquery) -> Select[Any]:
    """The columns of an :class:`ArticleSummary` but its feeds and alerts: the headline is
    the current version's, or the feed entry's before any version is stored."""
    current = _VERSION.alias("current_version")
    return (
        select(
            _ARTICLE.c.id,
            _ARTICLE.c.url,
            func.coalesce(current.c.title, _ARTICLE.c.entry_title).label("title"),
            _ARTICLE.c.status,
            _ARTICLE.c.first_seen,
            _ARTICLE.c.last_checked,
            func.coalesce(versions.c.versions, 0).label("versions"),
            versions.c.last_changed,
        )
        .outerjoin(versions, versions.c.article_id == _ARTICLE.c.id)
        .outerjoin(
            current,
            (current.c.article_id == _ARTICLE.c.id)
            & (current.c.number == _ARTICLE.c.current_version),
        )
    )


def _in_feeds(feeds: list[str]) -> Select[Any]:
    """The ids of the articles of these feeds."""
    return (
        select(_ARTICLE_FEED.c.article_id)
        .join(_FEED, _FEED.c.id == _ARTICLE_FEED.c.feed_id)
        .where(_FEED.c.name.in_(feeds))
    )


def _mentions(search: str) -> ColumnElement[bool]:
    """The article's entry title, or a headline or text of any of its versions, contains
    ``search`` (case-insensitive; ``%`` and ``_`` are themselves)."""
    matching = select(_VERSION.c.article_id).where(
        or_(
            _VERSION.c.title.icontains(search, autoescape=True),
            _VERSION.c.text.icontains(search, autoescape=True),
        )
    )
    return or_(
        _ARTICLE.c.id.in_(matching),
        _ARTICLE.c.entry_title.icontains(search, autoescape=True),
    )


def _feeds_of(connection: Connection, ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    for start in range(0, len(ids), 500):
        rows = connection.execute(
            select(_ARTICLE_FEED.c.article_id, _FEED.c.name)
            .join(_FEED, _FEED.c.id == _ARTICLE_FEED.c.feed_id)
            .where(_ARTICLE_FEED.c.article_id.in_(ids[start : start + 500]))
            .order_by(_ARTICLE_FEED.c.first_seen)
        )
        for article_id, name in rows:
            found[article_id].append(name)
    return found


def _alerts_of(connection: Connection, ids: list[int]) -> dict[int, int]:
    found: dict[int, int] = {}
    for start in range(0, len(ids), 500):
        rows = connection.execute(
            select(_ALERT.c.article_id, func.count())
            .where(_ALERT.c.article_id.in_(ids[start : start + 500]))
            .group_by(_ALERT.c.article_id)
        )
        found.update({int(article_id): int(count) for article_id, count in rows})
    return found
