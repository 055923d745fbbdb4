"""The reads that the quick commands (``watcher alerts``, ``feeds``, ``status``) make, written
against SQLAlchemy Core tables looked up by name, so that one code runs on two sources of the
same tables: the SQLModel schema's (:data:`watcher.storage.schema.TABLES`, in the
:class:`~watcher.storage.store.Store`) and the database's own, reflected
(:class:`~watcher.storage.reader.Reader`), which spares a read command importing SQLModel,
the ORM and the schema's classes (a fifth of its start-up).

Nothing here imports SQLModel: this module, :mod:`watcher.storage.engine` and the reader
are all a read command loads of the storage package.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Select,
    Table,
    TypeDecorator,
    func,
    inspect,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from watcher.errors import NoDatabase, StoreError
from watcher.records import AlertRecord, DeliveryStatus, FeedState, WorkerRecord, from_row
from watcher.storage.engine import short_reason

# The schema's version; migrations.py holds one numbered step to each (schema.py's tables
# are this version's).
SCHEMA_VERSION = 9

Tables = Mapping[str, Table]  # table name → table


class UTCTimestamp(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out; naive UTC in the column.

    SQLite has no time zones, so the column holds naive UTC on every backend alike. Every
    time column of the schema has this type (the reader gives it to the reflected ones).
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ------------------------------------------------------------------ the schema's version


def schema_version(connection: Connection, tables: Tables) -> int | None:
    """The version ``watcher_meta`` records, or None where there is no watcher schema."""
    if not inspect(connection).has_table("watcher_meta"):
        return None
    meta = tables["watcher_meta"]
    value = connection.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    return int(value) if value is not None else None


def require_schema(engine: Engine, label: str, tables: Tables) -> None:
    """Raise unless the database holds watcher's schema at this code's version; writes nothing."""
    with engine.connect() as connection:
        found = schema_version(connection, tables)
    if found is None:
        raise NoDatabase(label, "no watcher tables in it yet")
    refuse_newer(found, SCHEMA_VERSION, label)
    if found < SCHEMA_VERSION:
        raise StoreError(
            f"schema version {found} is older than this watcher's ({SCHEMA_VERSION}); "
            "read-only commands do not upgrade it: `watcher check` or `watcher run` does",
            database=label,
        )


def refuse_newer(found: int, target: int, label: str = "") -> None:
    if found > target:
        raise StoreError(
            f"schema version {found} is newer than this watcher understands ({target}); "
            "upgrade watcher",
            database=label,
        )


@contextmanager
def store_errors(label: str) -> Iterator[None]:
    """Driver errors become one-line StoreErrors; a refused unique key stays itself (the
    callers treat it as "already stored")."""
    try:
        yield
    except IntegrityError:
        raise
    except SQLAlchemyError as exc:
        raise StoreError(short_reason(exc), database=label) from None


# ------------------------------------------------------------------------- the queries


@dataclass(frozen=True)
class RecentChecks:
    """A tracked article that changed on some recent checks, with its outcomes."""

    id: int
    url: str
    title: str
    recent_checks: str
    feeds: tuple[str, ...]


class ReadQueries:
    """Alerts, feeds and live pages, read from :attr:`tables` over :attr:`engine`. The base of
    the Store and of the Reader, which say where the tables come from."""

    engine: Engine
    label: str
    tables: Tables

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A bare connection in a transaction: for the hot paths, where ORM upkeep costs more
        than the query itself (every re-check reads one article and writes one row)."""
        with self._errors(), self.engine.begin() as connection:
            yield connection

    def _errors(self) -> AbstractContextManager[None]:
        return store_errors(self.label)

    def alerts(
        self,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        rules: Collection[str] = (),
        feeds: Collection[str] = (),
        undelivered: bool = False,
        article_id: int | None = None,
    ) -> list[AlertRecord]:
        """Alerts oldest first, each with its deliveries; only those of ``rules`` and
        ``feeds`` when given, only those not delivered to every notifier with
        ``undelivered``."""
        alert = self.tables["alert"]
        # Newest first so the database keeps only the last ``limit``; turned back below.
        query = (
            alert_query(self.tables)
            .order_by(alert.c.created_at.desc(), alert.c.id.desc())
            .limit(limit)
        )
        if since is not None:
            query = query.where(alert.c.created_at >= since)
        if rules:
            query = query.where(alert.c.rule.in_(list(rules)))
        if feeds:
            query = query.where(alert.c.feed.in_(list(feeds)))
        if undelivered:
            query = query.where(alert.c.delivered_at.is_(None))
        if article_id is not None:
            query = query.where(alert.c.article_id == article_id)
        with self._transaction() as connection:
            rows = connection.execute(query).mappings().all()
            return alert_records(connection, self.tables, reversed(rows))

    def feed_states(self, names: Collection[str] | None = None) -> list[FeedState]:
        feed, article_feed = self.tables["feed"], self.tables["article_feed"]
        query = select(feed).order_by(feed.c.name)
        if names is not None:
            query = query.where(feed.c.name.in_(list(names)))
        with self._transaction() as connection:
            rows = connection.execute(query).mappings().all()
            # Counted for these feeds only (the index on feed_id): a poll reads its own feed's
            # state, and counting every feed's articles cost ~13 ms a poll at 20,000 articles.
            counting = select(article_feed.c.feed_id, func.count()).group_by(article_feed.c.feed_id)
            if names is not None:
                counting = counting.where(article_feed.c.feed_id.in_([r["id"] for r in rows]))
            counts: dict[int, int] = {
                feed_id: count for feed_id, count in connection.execute(counting)
            }
        return [from_row(FeedState, row, articles=counts.get(row["id"], 0)) for row in rows]

    def feed_state(self, name: str) -> FeedState:
        states = self.feed_states([name])
        if not states:
            raise StoreError(f"no feed named {name!r} in the database", database=self.label)
        return states[0]

    def changing_articles(self, min_changes: int) -> list[RecentChecks]:
        """Tracked articles with at least ``min_changes`` changes among their recent
        outcomes (the caller decides, over its window, which are live)."""
        article = self.tables["article"]
        pattern = "%" + "c%" * min_changes
        query = (
            select(article.c.id, article.c.url, article.c.entry_title, article.c.recent_checks)
            .where(article.c.status == "tracking", article.c.recent_checks.like(pattern))
            .order_by(article.c.id)
        )
        with self._transaction() as connection:
            rows = connection.execute(query).all()
            feeds = feeds_of(connection, self.tables, [row.id for row in rows])
        return [
            RecentChecks(row.id, row.url, row.entry_title, row.recent_checks, feeds[row.id])
            for row in rows
        ]

    def feed_totals(self) -> dict[str, dict[str, int]]:
        """Per feed name: its articles by status (tracking, retired), their versions and the
        alerts recorded for it. An article in two feeds counts in both."""
        feed, article_feed = self.tables["feed"], self.tables["article_feed"]
        article, version = self.tables["article"], self.tables["version"]
        alert = self.tables["alert"]
        totals: dict[str, dict[str, int]] = {}

        def add(name: str, key: str, count: int) -> None:
            empty = {"tracking": 0, "retired": 0, "versions": 0, "alerts": 0}
            totals.setdefault(name, empty)[key] = int(count)

        in_feed = feed.join(article_feed, article_feed.c.feed_id == feed.c.id)
        with self._transaction() as connection:
            for name, status, count in connection.execute(
                select(feed.c.name, article.c.status, func.count())
                .select_from(in_feed.join(article, article.c.id == article_feed.c.article_id))
                .group_by(feed.c.name, article.c.status)
            ):
                add(name, status, count)
            for name, count in connection.execute(
                select(feed.c.name, func.count())
                .select_from(
                    in_feed.join(version, version.c.article_id == article_feed.c.article_id)
                )
                .group_by(feed.c.name)
            ):
                add(name, "versions", count)
            for name, count in connection.execute(
                select(alert.c.feed, func.count()).group_by(alert.c.feed)
            ):
                add(name, "alerts", count)
        return totals

    def outbox_backlog(self) -> dict[str, int]:
        """Deliveries by state, plus alerts not yet routed (``new``)."""
        delivery, alert = self.tables["delivery"], self.tables["alert"]
        with self._transaction() as connection:
            counts = connection.execute(
                select(delivery.c.state, func.count()).group_by(delivery.c.state)
            ).all()
            new = connection.execute(
                select(func.count()).select_from(alert).where(alert.c.delivery_state == "new")
            ).scalar_one()
        return {"new": int(new), **{state: int(n) for state, n in counts}}

    def workers(self, *, seen_since: datetime) -> list[WorkerRecord]:
        """Workers seen since ``seen_since`` (stopped ones too), oldest start first."""
        worker = self.tables["worker"]
        with self._transaction() as connection:
            rows = connection.execute(
                select(worker)
                .where(worker.c.last_seen >= seen_since)
                .order_by(worker.c.started_at, worker.c.id)
            ).mappings()
            return [from_row(WorkerRecord, row) for row in rows]


def feeds_of(connection: Connection, tables: Tables, ids: list[int]) -> dict[int, tuple[str, ...]]:
    """Each article's feed names, in the order the article appeared in them."""
    feed, article_feed = tables["feed"], tables["article_feed"]
    found: dict[int, list[str]] = defaultdict(list)
    for chunk in chunks(ids, 500):
        query = (
            select(article_feed.c.article_id, feed.c.name)
            .join(feed, feed.c.id == article_feed.c.feed_id)
            .where(article_feed.c.article_id.in_(chunk))
            .order_by(article_feed.c.first_seen, feed.c.name)
        )
        for article_id, name in connection.execute(query):
            found[article_id].append(name)
    return {article_id: tuple(found[article_id]) for article_id in ids}


def alert_query(tables: Tables, *extra: Any) -> Select[Any]:
    """Alerts with their article's URL and their version's number and title (labelled
    ``article_url``, ``version_number``, ``version_title``), and ``extra`` columns."""
    alert, article, version = tables["alert"], tables["article"], tables["version"]
    return (
        select(
            alert,
            article.c.url.label("article_url"),
            version.c.number.label("version_number"),
            version.c.title.label("version_title"),
            *extra,
        )
        .outerjoin(article, article.c.id == alert.c.article_id)
        .outerjoin(version, version.c.id == alert.c.version_id)
    )


def alert_records(
    connection: Connection, tables: Tables, rows: Iterable[Mapping[Any, Any]]
) -> list[AlertRecord]:
    """The records of rows of :func:`alert_query`, each with its deliveries."""
    rows = list(rows)
    statuses = _statuses(connection, tables, [row["id"] for row in rows])
    return [alert_record(row, statuses.get(row["id"], ())) for row in rows]


def alert_record(row: Mapping[Any, Any], deliveries: tuple[DeliveryStatus, ...]) -> AlertRecord:
    """An alert record from a row of :func:`alert_query`; a feed-health alert has no article
    or version, and takes its link and title from its detail."""
    detail = json.loads(row["detail"])
    url, title = row["article_url"], row["version_title"]
    return from_row(
        AlertRecord,
        row,
        matched=tuple(json.loads(row["matched"])),
        detail=detail,
        article_id=row["article_id"] or 0,
        url=url if url is not None else detail.get("url", ""),
        title=title if title is not None else detail.get("title", ""),
        version=row["version_number"] or 0,
        deliveries=deliveries,
    )


def _statuses(
    connection: Connection, tables: Tables, alert_ids: list[int]
) -> dict[int, tuple[DeliveryStatus, ...]]:
    delivery = tables["delivery"]
    found: dict[int, list[DeliveryStatus]] = defaultdict(list)
    for chunk in chunks(alert_ids, 500):
        rows = connection.execute(
            select(delivery).where(delivery.c.alert_id.in_(chunk)).order_by(delivery.c.notifier)
        ).mappings()
        for row in rows:
            found[row["alert_id"]].append(from_row(DeliveryStatus, row))
    return {alert_id: tuple(statuses) for alert_id, statuses in found.items()}


def chunks(items: list[int], size: int) -> Iterable[list[int]]:
    """Ids in slices small enough for one IN (...) list on every backend."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
