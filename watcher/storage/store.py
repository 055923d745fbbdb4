"""Storage: the queries the tasks need, over SQLite (WAL) or PostgreSQL with the same code.

Rows never leave this module: callers get frozen dataclasses. Each public method is one
transaction, so a crash leaves either all of a check's writes or none of them (unchanged
checks inside a batch wait for one write together: see :mod:`watcher.storage.checkbook`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, bindparam, case, func, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from watcher.errors import StoreError
from watcher.records import (
    ArticleState,
    CheckRecord,
    DigestSet,
    VersionRecord,
    from_row,
)
from watcher.storage.alerts import AlertQueries
from watcher.storage.alerts import insert_alerts as _insert_alerts
from watcher.storage.browse import BrowseQueries
from watcher.storage.checkbook import BatchedChecks
from watcher.storage.engine import (
    EngineSql,
    check_schema,
    engine_sql,
    engine_transaction,
    open_database,
    probe_write,
    store_errors,
)
from watcher.storage.events import EventQueries, aliases_of, write_events
from watcher.storage.feeds import FeedQueries
from watcher.storage.furniture import FURNITURE_CACHE_SECONDS, FurnitureQueries, learn_lines
from watcher.storage.listing import ArticleListing
from watcher.storage.livepages import outcome_mark, outcome_values
from watcher.storage.migrations import migrate
from watcher.storage.newversion import insert_version
from watcher.storage.reads import ReadQueries, chunks, feeds_of
from watcher.storage.schema import (
    TABLES,
    AlertRow,
    ArticleAliasRow,
    ArticleEventRow,
    ArticleFeedRow,
    ArticleRow,
    DeliveryRow,
    FeedRow,
    SentMessageRow,
    VersionRow,
)
from watcher.storage.sqltext import Sql
from watcher.storage.workers import WorkerQueries

log = logging.getLogger(__name__)

# Core tables and prepared statements for the per-check hot path.
_ARTICLE = ArticleRow.__table__  # type: ignore[attr-defined]
_VERSION = VersionRow.__table__  # type: ignore[attr-defined]
_FEED = FeedRow.__table__  # type: ignore[attr-defined]
_ARTICLE_FEED = ArticleFeedRow.__table__  # type: ignore[attr-defined]
_ALERT = AlertRow.__table__  # type: ignore[attr-defined]
# One query for an article and its feeds' names: a row per feed (at least one, the outer
# join's, whose name is NULL for an article no feed lists any more).
_ARTICLE_BY_ID = (
    select(_ARTICLE, _FEED.c.name.label("feed_name_"))
    .select_from(
        _ARTICLE.outerjoin(_ARTICLE_FEED, _ARTICLE_FEED.c.article_id == _ARTICLE.c.id).outerjoin(
            _FEED, _FEED.c.id == _ARTICLE_FEED.c.feed_id
        )
    )
    .where(_ARTICLE.c.id == bindparam("id"))
    .order_by(_ARTICLE_FEED.c.first_seen, _FEED.c.name)
)


class Store(
    ReadQueries,
    FeedQueries,
    AlertQueries,
    FurnitureQueries,
    ArticleListing,
    BrowseQueries,
    WorkerQueries,
    EventQueries,
    BatchedChecks,
):
    """All database access. Open with :meth:`open`; close with :meth:`close`."""

    def __init__(self, engine: Engine, label: str) -> None:
        self.engine = engine
        self.label = label
        self._furniture: dict[str, tuple[float, DigestSet]] = {}
        # How long learned furniture is kept in this process (see site_furniture): 0 where
        # several processes check pages of one host (the queue's workers).
        self.furniture_cache_seconds = FURNITURE_CACHE_SECONDS
        self._init_batches()

    @classmethod
    def open(
        cls, url: str, *, writer: bool = False, create: bool = True, read_only: bool = False
    ) -> Store:
        """Open (creating or migrating the schema). A ``writer`` (``check``, ``run``) also
        proves the database takes a write, so a full disk or a read-only database stops it
        with one message at start instead of failing every check one by one.

        Without ``create`` (the read-only commands) nothing is written: no file, folder or
        schema is made, and a missing or outdated one raises :class:`NoDatabase` or
        :class:`StoreError` saying what to run. ``read_only`` (with ``create=False``) opens
        connections that refuse every write (the web view)."""

        def prepare(engine: Engine, label: str) -> None:
            if create:
                migrate(engine)
            else:
                check_schema(engine, label)
            if writer:
                probe_write(engine, TABLES["watcher_meta"])

        return cls(*open_database(url, prepare, create=create, read_only=read_only))

    def close(self) -> None:
        self.flush_checks_quietly()
        self.engine.dispose()

    def _transaction(self) -> AbstractContextManager[Connection]:
        """A bare connection in a transaction: for the hot paths, where ORM upkeep costs more
        than the query itself (every re-check reads one article and writes one row)."""
        return engine_transaction(self.engine, self.label)

    def _errors(self) -> AbstractContextManager[None]:
        return store_errors(self.label)

    def sql(self) -> AbstractContextManager[Sql]:
        return engine_sql(self.engine, self.label)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._errors(), Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A bare connection for one read on the hot path: no transaction to commit (the
        read is one statement, consistent by itself), which saves a fifth of its cost."""
        with self._errors(), self.engine.connect() as connection:
            yield connection

    # --------------------------------------------------------------- articles

    def due_article_ids(
        self,
        now: datetime,
        *,
        limit: int | None = None,
        feeds: Collection[str] | None = None,
        everything: bool = False,
    ) -> list[int]:
        """Tracked articles whose re-check is due (all tracked ones with ``everything``)."""
        with self._session() as session:
            query = select(ArticleRow.id).where(ArticleRow.status == "tracking")
            if not everything:
                query = query.where(col(ArticleRow.next_check_at) <= now)
            if feeds is not None:
                in_feeds = (
                    select(ArticleFeedRow.article_id)
                    .join(FeedRow, col(FeedRow.id) == col(ArticleFeedRow.feed_id))
                    .where(col(FeedRow.name).in_(list(feeds)))
                )
                query = query.where(col(ArticleRow.id).in_(in_feeds))
            query = query.order_by(col(ArticleRow.next_check_at), col(ArticleRow.id)).limit(limit)
            return [int(i) for i in session.exec(query) if i is not None]

    def article(self, article_id: int) -> ArticleState:
        with self._reading() as connection:
            rows = connection.execute(_ARTICLE_BY_ID, {"id": article_id}).mappings().all()
        if not rows:
            raise StoreError(f"no article {article_id}", database=self.label)
        feeds = tuple(row["feed_name_"] for row in rows if row["feed_name_"] is not None)
        return _article_state(rows[0], feeds)

    def find_article(self, url: str) -> ArticleState | None:
        """By canonical URL, published link or guid, or a URL it moved to or from."""
        with self._session() as session:
            aliased = aliases_of(session.connection(), [url])
            row = session.exec(
                select(ArticleRow).where(
                    or_(
                        col(ArticleRow.url) == url,
                        col(ArticleRow.link) == url,
                        col(ArticleRow.guid) == url,
                        col(ArticleRow.id).in_(list(aliased.values())),
                    )
                )
            ).first()
            if row is None:
                return None
            assert row.id is not None  # a stored row
            feeds = feeds_of(EngineSql(session.connection()), [row.id])[row.id]
            return _article_state(row.model_dump(), feeds)

    def versions(self, article_id: int, *, newest: int | None = None) -> list[VersionRecord]:
        """Versions oldest first (only the ``newest`` N when given)."""
        with self._session() as session:
            query = (
                select(VersionRow)
                .where(VersionRow.article_id == article_id)
                .order_by(col(VersionRow.number).desc())
                .limit(newest)
            )
            return [_version(row) for row in reversed(session.exec(query).all())]

    def version_by_hash(self, article_id: int, content_hash: str) -> VersionRecord | None:
        with self._session() as session:
            row = session.exec(
                select(VersionRow).where(
                    VersionRow.article_id == article_id, VersionRow.content_hash == content_hash
                )
            ).first()
            return None if row is None else _version(row)

    def record_check(self, article_id: int, check: CheckRecord) -> VersionRecord | None:
        """Write a check's outcome; returns the stored version when it made a new one.

        Returns None as well when the same content was stored concurrently (the unique key
        (article, hash) refused it): that is the idempotence guarantee, not an error.
        Inside :meth:`batched_checks` an unchanged check is only kept, for one batch write.
        """
        if self.buffer_unchanged(article_id, check):
            return None
        self._settle(article_id)
        if check.version is None:
            with self._transaction() as connection:
                _update_article(connection, article_id, check, check.seen_again)
            return None
        try:
            with self._transaction() as connection:
                stored = insert_version(connection, article_id, check)
                _update_article(connection, article_id, check, stored.number)
                crossed = learn_lines(connection, check.host, check.line_keys)
        except IntegrityError:
            log.info("article %s: this content was already stored by an earlier run", article_id)
            return self.record_check(article_id, replace(check, version=None, alerts=()))
        self.note_furniture(check.host, crossed)
        return stored

    def warc_files_in_use(self) -> set[str]:
        """The WARC files some version still points at (what the archive must keep)."""
        with self._transaction() as connection:
            query = select(_VERSION.c.warc_file).where(_VERSION.c.warc_file.is_not(None))
            return {str(name) for name in connection.execute(query.distinct()).scalars()}

    def retire(self, article_id: int) -> None:
        self._settle(article_id)
        with self._session() as session:
            session.execute(
                update(ArticleRow)
                .where(col(ArticleRow.id) == article_id)
                .values(status="retired", next_check_at=None)
            )
            session.commit()

    def prune(
        self, *, retired_before: datetime | None, messages_before: datetime
    ) -> dict[str, int]:
        """Delete articles retired (last checked) before ``retired_before`` with everything
        they own, unless one of their alerts still waits to be delivered; and the record of
        messages sent before ``messages_before`` (rate limits no longer look that far)."""
        deleted = {"articles": 0, "sent_messages": 0}
        with self._transaction() as connection:
            if retired_before is not None:
                doomed = _prunable_articles(connection, retired_before)
                for chunk in chunks(doomed, 500):
                    _delete_articles(connection, chunk)
                deleted["articles"] = len(doomed)
            sent = SentMessageRow.__table__  # type: ignore[attr-defined]
            result = connection.execute(sent.delete().where(sent.c.sent_at < messages_before))
            deleted["sent_messages"] = result.rowcount or 0
        return deleted

    def counts(self) -> dict[str, int]:
        with self._session() as session:
            return {
                name: int(session.exec(select(func.count()).select_from(table)).one())
                for name, table in (
                    ("feeds", FeedRow),
                    ("articles", ArticleRow),
                    ("versions", VersionRow),
                    ("alerts", AlertRow),
                )
            }


# ---------------------------------------------------------------------------- helpers


def _prunable_articles(connection: Connection, retired_before: datetime) -> list[int]:
    delivery = DeliveryRow.__table__  # type: ignore[attr-defined]
    waiting = (
        select(_ALERT.c.article_id)
        .select_from(_ALERT.outerjoin(delivery, delivery.c.alert_id == _ALERT.c.id))
        .where(
            or_(
                _ALERT.c.delivery_state == "new",
                delivery.c.state.in_(("pending", "retrying")),
            )
        )
    )
    query = select(_ARTICLE.c.id).where(
        _ARTICLE.c.status == "retired",
        _ARTICLE.c.last_checked < retired_before,
        _ARTICLE.c.id.not_in(waiting),
    )
    return [int(i) for i in connection.execute(query).scalars()]


def _delete_articles(connection: Connection, ids: Sequence[int]) -> None:
    """Children first: deliveries, alerts, versions, feed links, then the articles."""
    delivery = DeliveryRow.__table__  # type: ignore[attr-defined]
    alerts = select(_ALERT.c.id).where(_ALERT.c.article_id.in_(ids))
    connection.execute(delivery.delete().where(delivery.c.alert_id.in_(alerts)))
    events = (ArticleEventRow.__table__, ArticleAliasRow.__table__)  # type: ignore[attr-defined]
    for table in (_ALERT, _VERSION, _ARTICLE_FEED, *events):
        connection.execute(table.delete().where(table.c.article_id.in_(ids)))
    connection.execute(_ARTICLE.delete().where(_ARTICLE.c.id.in_(ids)))


def _update_article(
    connection: Connection, article_id: int, check: CheckRecord, current: int | None
) -> None:
    """The article's bookkeeping after a check (``current``: the version it now shows, when
    the check stored or went back to one), by a statement prebuilt for the check's shape."""
    stored = current if check.version is not None else None
    shape = _CheckShape(
        failed=check.error is not None,
        gone=check.gone,
        shows=current is not None,
        flip=check.seen_again is not None,
        mark=outcome_mark(check, stored),
    )
    statement = _article_update(shape)
    status = "tracking" if check.next_check_at is not None else "retired"
    parameters = {
        "u_id": article_id,
        "u_checked": check.checked_at,
        "u_next": check.next_check_at,
        "u_status": status,
        "u_error": check.error,
        "u_etag": check.etag,
        "u_modified": check.last_modified,
        "u_current": current,
    }
    if check.seen_again is not None:
        connection.execute(
            update(_VERSION)
            .where(_VERSION.c.article_id == article_id, _VERSION.c.number == check.seen_again)
            .values(times_seen=_VERSION.c.times_seen + 1, last_seen_at=check.checked_at)
        )
        if check.revert_alerts:
            _insert_revert_alerts(connection, article_id, check)
    connection.execute(statement, parameters)
    if check.events:
        write_events(connection, article_id, check.events, check.checked_at, current)


@dataclass(frozen=True)
class _CheckShape:
    """What decides the form of a check's UPDATE of its article (its values are parameters)."""

    failed: bool
    gone: bool
    shows: bool  # the check stored a version or went back to one
    flip: bool  # it went back to one
    mark: str  # what it adds to the recent outcomes (livepages)


# Built once per check shape met (a few dozen at most): building and cache-keying a
# statement for every check cost more than the write itself.
@functools.cache
def _article_update(shape: _CheckShape) -> Any:
    article = _ARTICLE.c
    values: dict[str, Any] = {
        "checks": article.checks + 1,
        "last_checked": bindparam("u_checked"),
        "next_check_at": bindparam("u_next"),
        "status": bindparam("u_status"),
        "failures": article.failures + 1 if shape.failed else 0,
        "last_error": bindparam("u_error"),
        # Gone answers in a row: another failure says nothing either way (takedown.py).
        "gone_checks": article.gone_checks + 1
        if shape.gone
        else (article.gone_checks if shape.failed else 0),
        **outcome_values(shape.mark),
    }
    if not shape.failed:
        values.update(etag=bindparam("u_etag"), last_modified=bindparam("u_modified"))
    if shape.shows:
        current = bindparam("u_current", type_=Integer)
        values["current_version"] = current
        # The old values on both backends: the version live before, kept for diffs.
        values["previous_version"] = case(
            (article.current_version != current, article.current_version),
            else_=article.previous_version,
        )
        values["flips"] = article.flips + 1 if shape.flip else 0
    return update(_ARTICLE).where(article.id == bindparam("u_id")).values(**values)


def _insert_revert_alerts(connection: Connection, article_id: int, check: CheckRecord) -> None:
    """A revert's alerts belong to the version gone back to, keyed by the check that saw it
    (its number among the article's checks): a rerun of the same check cannot add them twice,
    a later revert to the same version raises its own."""
    version_id = connection.execute(
        select(_VERSION.c.id).where(
            _VERSION.c.article_id == article_id, _VERSION.c.number == check.seen_again
        )
    ).scalar_one()
    checks = connection.execute(
        select(_ARTICLE.c.checks).where(_ARTICLE.c.id == article_id)
    ).scalar_one()
    _insert_alerts(
        connection, article_id, version_id, check.revert_alerts, check.checked_at, checks + 1
    )


def _article_state(row: Mapping[Any, Any], feeds: tuple[str, ...]) -> ArticleState:
    return from_row(ArticleState, row, feeds=feeds)


def _version(row: VersionRow) -> VersionRecord:
    return from_row(VersionRecord, row.model_dump())
