"""The reads that the quick commands (``watcher alerts``, ``feeds``, ``status``) make, as SQL
text (:mod:`watcher.storage.sqltext`), so that one code runs over two drivers: SQLAlchemy's,
in the :class:`~watcher.storage.store.Store`, and the standard library's ``sqlite3``, in the
:class:`~watcher.storage.reader.Reader`, which spares a read command importing SQLAlchemy
(half of its start-up).

Nothing here imports SQLAlchemy or SQLModel: this module, :mod:`~watcher.storage.sqltext` and
the reader are all a read command loads of the storage package on a SQLite file.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from watcher.errors import NoDatabase, StoreError
from watcher.records import AlertRecord, DeliveryStatus, FeedState, WorkerRecord
from watcher.storage.sqltext import Select, Sql, has_table, record

T = TypeVar("T")

# The schema's version; migrations.py holds one numbered step to each (schema.py's tables
# are this version's).
SCHEMA_VERSION = 9


# ------------------------------------------------------------------ the schema's version


def schema_version(sql: Sql) -> int | None:
    """The version ``watcher_meta`` records, or None where there is no watcher schema."""
    if not has_table(sql, "watcher_meta"):
        return None
    rows = sql.rows("SELECT value FROM watcher_meta WHERE key = 'schema_version'")
    return int(rows[0]["value"]) if rows and rows[0]["value"] is not None else None


def require_schema(sql: Sql, label: str) -> None:
    """Raise unless the database holds watcher's schema at this code's version; writes nothing."""
    found = schema_version(sql)
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
    """Alerts, feeds and live pages, read as SQL text through :meth:`sql`. The base of the
    Store and of the Reader, which say which driver runs it."""

    label: str

    def sql(self) -> AbstractContextManager[Sql]:
        """A connection in one transaction; a driver error in it is a :class:`StoreError`."""
        raise NotImplementedError

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
        # Newest first so the database keeps only the last ``limit``; turned back below.
        query = alert_select()
        query.order, query.limit = "alert.created_at DESC, alert.id DESC", limit
        if since is not None:
            query.where("alert.created_at >= :since", since=since)
        if rules:
            query.where_in("alert.rule", list(rules), "rule")
        if feeds:
            query.where_in("alert.feed", list(feeds), "feed")
        if undelivered:
            query.where("alert.delivered_at IS NULL")
        if article_id is not None:
            query.where("alert.article_id = :article_id", article_id=article_id)
        with self.sql() as sql:
            return alert_records(sql, reversed(query.run(sql)))

    def feed_states(self, names: Collection[str] | None = None) -> list[FeedState]:
        query = Select("*", "feed", order="name")
        if names is not None:
            query.where_in("name", list(names), "name")
        with self.sql() as sql:
            rows = query.run(sql)
            # Counted for these feeds only (the index on feed_id): a poll reads its own feed's
            # state, and counting every feed's articles cost ~13 ms a poll at 20,000 articles.
            counting = Select("feed_id, count(*) AS n", "article_feed", group="feed_id")
            if names is not None:
                counting.where_in("feed_id", [row["id"] for row in rows], "feed")
            counts = {row["feed_id"]: row["n"] for row in counting.run(sql)}
        return [record(FeedState, row, articles=counts.get(row["id"], 0)) for row in rows]

    def feed_state(self, name: str) -> FeedState:
        states = self.feed_states([name])
        if not states:
            raise StoreError(f"no feed named {name!r} in the database", database=self.label)
        return states[0]

    def changing_articles(self, min_changes: int) -> list[RecentChecks]:
        """Tracked articles with at least ``min_changes`` changes among their recent
        outcomes (the caller decides, over its window, which are live)."""
        query = Select("id, url, entry_title, recent_checks", "article", order="id")
        query.where("status = 'tracking'").where(
            "recent_checks LIKE :pattern", pattern="%" + "c%" * min_changes
        )
        with self.sql() as sql:
            rows = query.run(sql)
            feeds = feeds_of(sql, [row["id"] for row in rows])
        return [
            RecentChecks(r["id"], r["url"], r["entry_title"], r["recent_checks"], feeds[r["id"]])
            for r in rows
        ]

    def feed_totals(self) -> dict[str, dict[str, int]]:
        """Per feed name: its articles by status (tracking, retired), their versions and the
        alerts recorded for it. An article in two feeds counts in both."""
        totals: dict[str, dict[str, int]] = {}

        def add(name: str, key: str, count: int) -> None:
            empty = {"tracking": 0, "retired": 0, "versions": 0, "alerts": 0}
            totals.setdefault(name, empty)[key] = int(count)

        in_feed = "feed JOIN article_feed ON article_feed.feed_id = feed.id"
        with self.sql() as sql:
            for row in sql.rows(
                "SELECT feed.name AS name, article.status AS status, count(*) AS n "
                f"FROM {in_feed} JOIN article ON article.id = article_feed.article_id "
                "GROUP BY feed.name, article.status"
            ):
                add(row["name"], row["status"], row["n"])
            for row in sql.rows(
                "SELECT feed.name AS name, count(*) AS n "
                f"FROM {in_feed} JOIN version ON version.article_id = article_feed.article_id "
                "GROUP BY feed.name"
            ):
                add(row["name"], "versions", row["n"])
            for row in sql.rows("SELECT feed, count(*) AS n FROM alert GROUP BY feed"):
                add(row["feed"], "alerts", row["n"])
        return totals

    def outbox_backlog(self) -> dict[str, int]:
        """Deliveries by state, plus alerts not yet routed (``new``)."""
        with self.sql() as sql:
            counts = sql.rows("SELECT state, count(*) AS n FROM delivery GROUP BY state")
            new = sql.rows("SELECT count(*) AS n FROM alert WHERE delivery_state = 'new'")
        return {"new": int(new[0]["n"]), **{row["state"]: int(row["n"]) for row in counts}}

    def workers(self, *, seen_since: datetime) -> list[WorkerRecord]:
        """Workers seen since ``seen_since`` (stopped ones too), oldest start first."""
        query = Select("*", "worker", order="started_at, id")
        query.where("last_seen >= :since", since=seen_since)
        with self.sql() as sql:
            return [record(WorkerRecord, row) for row in query.run(sql)]


def feeds_of(sql: Sql, ids: list[int]) -> dict[int, tuple[str, ...]]:
    """Each article's feed names, in the order the article appeared in them."""
    found: dict[int, list[str]] = defaultdict(list)
    for chunk in chunks(ids, 500):
        query = Select(
            "article_feed.article_id AS article_id, feed.name AS name",
            "article_feed JOIN feed ON feed.id = article_feed.feed_id",
            order="article_feed.first_seen, feed.name",
        )
        for row in query.where_in("article_feed.article_id", chunk, "article").run(sql):
            found[row["article_id"]].append(row["name"])
    return {article_id: tuple(found[article_id]) for article_id in ids}


def alert_select(columns: str = "", source: str = "") -> Select:
    """Alerts with their article's URL and their version's number and title (labelled
    ``article_url``, ``version_number``, ``version_title``), and more ``columns`` from more
    ``source`` (joined)."""
    return Select(
        "alert.*, article.url AS article_url, version.number AS version_number, "
        "version.title AS version_title" + (f", {columns}" if columns else ""),
        "alert LEFT OUTER JOIN article ON article.id = alert.article_id "
        "LEFT OUTER JOIN version ON version.id = alert.version_id"
        + (f" {source}" if source else ""),
    )


def alert_records(sql: Sql, rows: Iterable[Mapping[str, Any]]) -> list[AlertRecord]:
    """The records of rows of :func:`alert_select`, each with its deliveries."""
    rows = list(rows)
    statuses = _statuses(sql, [row["id"] for row in rows])
    return [alert_record(row, statuses.get(row["id"], ())) for row in rows]


def alert_record(row: Mapping[str, Any], deliveries: tuple[DeliveryStatus, ...]) -> AlertRecord:
    """An alert record from a row of :func:`alert_select`; a feed-health alert has no article
    or version, and takes its link and title from its detail."""
    detail = json.loads(row["detail"])
    url, title = row["article_url"], row["version_title"]
    return record(
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


def _statuses(sql: Sql, alert_ids: list[int]) -> dict[int, tuple[DeliveryStatus, ...]]:
    found: dict[int, list[DeliveryStatus]] = defaultdict(list)
    for chunk in chunks(alert_ids, 500):
        query = Select("*", "delivery", order="notifier").where_in("alert_id", chunk, "alert")
        for row in query.run(sql):
            found[row["alert_id"]].append(record(DeliveryStatus, row))
    return {alert_id: tuple(statuses) for alert_id, statuses in found.items()}


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Items in slices small enough for one statement (an IN (...) list, a VALUES list) on
    every backend."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
