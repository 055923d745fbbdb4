"""Article events (removed, restored, moved) and the aliases of moved articles: written in
a check's transaction (:func:`write_events`), read by history and the web view
(:class:`EventQueries`, mixed into the Store)."""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import Connection, func, select, update

from watcher.records import ArticleEvent, NewArticleEvent, from_row
from watcher.storage.alerts import insert_alerts
from watcher.storage.schema import (
    AlertRow,
    ArticleAliasRow,
    ArticleEventRow,
    ArticleRow,
    VersionRow,
)

_ARTICLE = ArticleRow.__table__  # type: ignore[attr-defined]
_VERSION = VersionRow.__table__  # type: ignore[attr-defined]
_EVENT = ArticleEventRow.__table__  # type: ignore[attr-defined]
_ALIAS = ArticleAliasRow.__table__  # type: ignore[attr-defined]
_ALERT = AlertRow.__table__  # type: ignore[attr-defined]


class EventQueries:
    """Reading an article's events. Mixed into Store, which supplies the transactions."""

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def article_events(self, article_id: int) -> list[ArticleEvent]:
        """The article's events, oldest first."""
        with self._transaction() as connection:
            rows = connection.execute(
                select(_EVENT).where(_EVENT.c.article_id == article_id).order_by(_EVENT.c.id)
            ).mappings()
            return [from_row(ArticleEvent, row) for row in rows]


def aliases_of(connection: Connection, urls: Collection[str]) -> dict[str, int]:
    """Alias URL → article id, for the URLs among ``urls`` that are aliases."""
    if not urls:
        return {}
    query = select(_ALIAS.c.url, _ALIAS.c.article_id).where(_ALIAS.c.url.in_(list(urls)))
    return {str(url): int(article_id) for url, article_id in connection.execute(query)}


def write_events(
    connection: Connection,
    article_id: int,
    events: tuple[NewArticleEvent, ...],
    at: datetime,
    current: int | None,
) -> None:
    """Record a check's events and their alerts. A removal or restore is written only when
    the article's state changes with it, so a check run twice records it once."""
    for event in events:
        if event.kind in ("removed", "restored") and not _flip_removed(
            connection, article_id, event, at
        ):
            continue
        if event.kind == "moved":
            _record_move(connection, article_id, event)
        event_id = _insert_event(connection, article_id, event, at)
        _insert_event_alerts(connection, article_id, event, at, event_id, current)


def _flip_removed(
    connection: Connection, article_id: int, event: NewArticleEvent, at: datetime
) -> bool:
    removing = event.kind == "removed"
    state = _ARTICLE.c.removed_at
    result = connection.execute(
        update(_ARTICLE)
        .where(_ARTICLE.c.id == article_id, state.is_(None) if removing else state.is_not(None))
        .values(removed_at=at if removing else None)
    )
    return bool(result.rowcount)


def _record_move(connection: Connection, article_id: int, event: NewArticleEvent) -> None:
    """Fetch the new URL from now on; its URLs not yet naming an article become aliases."""
    connection.execute(update(_ARTICLE).where(_ARTICLE.c.id == article_id).values(link=event.url))
    taken = set(aliases_of(connection, event.aliases))
    taken |= set(
        connection.execute(
            select(_ARTICLE.c.url).where(
                _ARTICLE.c.url.in_(list(event.aliases)), _ARTICLE.c.id != article_id
            )
        ).scalars()
    )
    fresh = [url for url in event.aliases if url not in taken]
    if fresh:
        connection.execute(_ALIAS.insert(), [{"url": u, "article_id": article_id} for u in fresh])


def _insert_event(
    connection: Connection, article_id: int, event: NewArticleEvent, at: datetime
) -> int:
    row = {
        "article_id": article_id,
        "kind": event.kind,
        "at": at,
        "reason": event.reason,
        "url": event.url,
        "status": event.status,
    }
    inserted = connection.execute(_EVENT.insert().values(row)).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def _insert_event_alerts(
    connection: Connection,
    article_id: int,
    event: NewArticleEvent,
    at: datetime,
    event_id: int,
    current: int | None,
) -> None:
    """An event's alerts belong to the version on the page (the one taken down or back),
    keyed by the event: ``occurrence`` is minus its id, apart from the 0 of a new version's
    alerts and the check numbers of reverts."""
    if not event.alerts:
        return
    number = current
    if number is None:
        number = connection.execute(
            select(_ARTICLE.c.current_version).where(_ARTICLE.c.id == article_id)
        ).scalar()
    version_id = connection.execute(
        select(func.min(_VERSION.c.id)).where(
            _VERSION.c.article_id == article_id, _VERSION.c.number == number
        )
    ).scalar()
    insert_alerts(connection, article_id, version_id, event.alerts, at, -event_id)
