"""The read-only queries of the web view (:mod:`watcher.web`): lists that page by id, so a
page costs the same with 100 versions stored as with 100,000.

Every list is newest first and takes ``before`` (an id: the cursor of the page before) and
``limit``. Only columns a list shows are read: no article text is loaded for a list.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, and_, exists, func, or_, select
from sqlmodel import Session

from watcher.records import AlertRecord, BrowsedArticle, ChangeRef, VersionRecord, from_row
from watcher.storage.engine import EngineSql
from watcher.storage.reads import alert_records, alert_select
from watcher.storage.schema import (
    AlertRow,
    ArticleFeedRow,
    ArticleRow,
    DeliveryRow,
    FeedRow,
    VersionRow,
)

_ARTICLE = ArticleRow.__table__  # type: ignore[attr-defined]
_VERSION = VersionRow.__table__  # type: ignore[attr-defined]
_FEED = FeedRow.__table__  # type: ignore[attr-defined]
_ARTICLE_FEED = ArticleFeedRow.__table__  # type: ignore[attr-defined]
_ALERT = AlertRow.__table__  # type: ignore[attr-defined]
_DELIVERY = DeliveryRow.__table__  # type: ignore[attr-defined]

# The states a list of alerts can be filtered by: a delivery's, or "new" (not routed yet).
ALERT_STATES = ("new", "pending", "retrying", "sent", "gave_up")


class BrowseQueries:
    """Mixed into Store, which supplies the connections."""

    label: str

    def _session(self) -> AbstractContextManager[Session]:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def version(self, article_id: int, number: int) -> VersionRecord | None:
        with self._transaction() as connection:
            row = (
                connection.execute(
                    select(_VERSION).where(
                        _VERSION.c.article_id == article_id, _VERSION.c.number == number
                    )
                )
                .mappings()
                .first()
            )
            return None if row is None else from_row(VersionRecord, row)

    def changes(
        self,
        *,
        limit: int,
        before: int | None = None,
        feed: str | None = None,
        article_ids: Set[int] | None = None,
    ) -> list[ChangeRef]:
        """Versions after an article's first (edits), newest first; of one feed's articles
        when ``feed`` is given. Walks the version ids down: no sort, no extra index."""
        query = (
            select(
                _VERSION.c.id.label("version_id"),
                _VERSION.c.article_id,
                _VERSION.c.number,
                _VERSION.c.title,
                _ARTICLE.c.url,
                _VERSION.c.fetched_at,
            )
            .join(_ARTICLE, _ARTICLE.c.id == _VERSION.c.article_id)
            .where(_VERSION.c.number > 1)
            .order_by(_VERSION.c.id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(_VERSION.c.id < before)
        if feed is not None:
            query = query.where(
                exists().where(
                    _ARTICLE_FEED.c.article_id == _VERSION.c.article_id,
                    _ARTICLE_FEED.c.feed_id == _feed_id(feed),
                )
            )
        if article_ids is not None:
            query = query.where(_VERSION.c.article_id.in_(sorted(article_ids)))
        with self._transaction() as connection:
            return [from_row(ChangeRef, row) for row in connection.execute(query).mappings()]

    def feed_articles(
        self, feed: str, *, limit: int, before: int | None = None
    ) -> list[BrowsedArticle]:
        """A feed's articles, newest first."""
        query = (
            select(_ARTICLE_FEED.c.article_id)
            .where(_ARTICLE_FEED.c.feed_id == _feed_id(feed))
            .order_by(_ARTICLE_FEED.c.article_id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(_ARTICLE_FEED.c.article_id < before)
        with self._transaction() as connection:
            ids = list(connection.execute(query).scalars())
            return _summaries(connection, ids)

    def search_articles(
        self, text: str, *, limit: int, before: int | None = None
    ) -> list[BrowsedArticle]:
        """Articles whose URL, link, feed headline or any version's headline contains
        ``text`` (case-insensitive), newest first; every article without ``text``."""
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        titled = select(_VERSION.c.article_id).where(
            func.lower(_VERSION.c.title).like(pattern.lower(), escape="\\")
        )
        query = select(_ARTICLE.c.id).order_by(_ARTICLE.c.id.desc()).limit(limit)
        if text:
            query = query.where(
                or_(
                    func.lower(_ARTICLE.c.url).like(pattern.lower(), escape="\\"),
                    func.lower(_ARTICLE.c.link).like(pattern.lower(), escape="\\"),
                    func.lower(_ARTICLE.c.entry_title).like(pattern.lower(), escape="\\"),
                    _ARTICLE.c.id.in_(titled),
                )
            )
        if before is not None:
            query = query.where(_ARTICLE.c.id < before)
        with self._transaction() as connection:
            return _summaries(connection, list(connection.execute(query).scalars()))

    def alert_page(
        self,
        *,
        limit: int,
        before: int | None = None,
        rule: str | None = None,
        state: str | None = None,
        feed: str | None = None,
    ) -> list[AlertRecord]:
        """Alerts newest first, each with its deliveries; ``state`` keeps those with a
        delivery in that state (``new``: not routed to a notifier yet)."""
        query = alert_select()
        query.order, query.limit = "alert.id DESC", limit
        if before is not None:
            query.where("alert.id < :before", before=before)
        if rule is not None:
            query.where("alert.rule = :rule", rule=rule)
        if feed is not None:
            query.where("alert.feed = :feed", feed=feed)
        if state == "new":
            query.where("alert.delivery_state = 'new'")
        elif state is not None:
            query.where(
                "EXISTS (SELECT 1 FROM delivery WHERE delivery.alert_id = alert.id "
                "AND delivery.state = :state)",
                state=state,
            )
        with self._transaction() as connection:
            sql = EngineSql(connection)
            return alert_records(sql, query.run(sql))

    def alert_rules(self) -> dict[str, int]:
        """Each rule that recorded alerts, with how many."""
        with self._transaction() as connection:
            rows = connection.execute(
                select(_ALERT.c.rule, func.count()).group_by(_ALERT.c.rule).order_by(_ALERT.c.rule)
            )
            return {rule: int(count) for rule, count in rows}

    def delivery_counts(self) -> dict[str, int]:
        """Deliveries by state, and ``new`` alerts not routed yet."""
        with self._transaction() as connection:
            counts = {
                state: int(count)
                for state, count in connection.execute(
                    select(_DELIVERY.c.state, func.count()).group_by(_DELIVERY.c.state)
                )
            }
            counts["new"] = int(
                connection.execute(
                    select(func.count()).where(_ALERT.c.delivery_state == "new")
                ).scalar_one()
            )
        return {state: counts.get(state, 0) for state in ALERT_STATES}


def _feed_id(name: str) -> Any:
    return select(_FEED.c.id).where(_FEED.c.name == name).scalar_subquery()


def _summaries(connection: Connection, ids: Sequence[int]) -> list[BrowsedArticle]:
    """Summaries of these articles, in this order: their version counts and newest headline
    read for these ids only (the index on version.article_id)."""
    if not ids:
        return []
    articles = {
        row["id"]: row
        for row in connection.execute(select(_ARTICLE).where(_ARTICLE.c.id.in_(ids))).mappings()
    }
    newest = (
        select(
            _VERSION.c.article_id,
            func.count().label("versions"),
            func.max(_VERSION.c.number).label("latest"),
        )
        .where(_VERSION.c.article_id.in_(ids))
        .group_by(_VERSION.c.article_id)
        .subquery()
    )
    latest = connection.execute(
        select(
            newest.c.article_id, newest.c.versions, _VERSION.c.title, _VERSION.c.fetched_at
        ).join(
            _VERSION,
            and_(
                _VERSION.c.article_id == newest.c.article_id,
                _VERSION.c.number == newest.c.latest,
            ),
        )
    )
    facts = {row.article_id: row for row in latest}
    return [_summary(articles[i], facts.get(i)) for i in ids if i in articles]


def _summary(article: Any, newest: Any) -> BrowsedArticle:
    return BrowsedArticle(
        id=article["id"],
        url=article["url"],
        title=(newest.title if newest is not None else "") or article["entry_title"],
        status=article["status"],
        first_seen=article["first_seen"],
        last_checked=article["last_checked"],
        versions=int(newest.versions) if newest is not None else 0,
        last_change_at=newest.fetched_at if newest is not None else None,
        failures=article["failures"],
        last_error=article["last_error"],
    )
