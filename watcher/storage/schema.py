"""The SQLModel tables: the schema's one definition. Only the store (:mod:`watcher.storage.store`)
touches them; other stages get dataclasses. The quick read commands query the same tables as
SQL text (:mod:`watcher.storage.reads`), through either driver.

Times are naive UTC (see :mod:`watcher.clock`). Two unique keys make the pipeline idempotent:
a version is unique per (article, content hash) and an alert per (rule, version), so a pass
interrupted and run again cannot store the same version or record the same alert twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from watcher.storage.engine import UTCTimestamp as UTCTimestamp
from watcher.storage.reads import SCHEMA_VERSION as SCHEMA_VERSION


def _when(*, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCTimestamp, index=index)


class FeedRow(SQLModel, table=True):
    __tablename__ = "feed"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    url: str
    title: str = ""
    etag: str | None = None
    last_modified: str | None = None
    last_polled_at: datetime | None = _when()
    last_success_at: datetime | None = _when()
    next_poll_at: datetime | None = _when(index=True)
    last_status: int | None = None
    error_streak: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    entries_seen: int = 0
    # Set when the feed answered 410 Gone: it is not polled again until its URL changes.
    disabled_at: datetime | None = _when()
    # Digest of the last body whose entries were all tracked (see watcher.feeds.feed_digest).
    body_digest: str | None = None


class ArticleRow(SQLModel, table=True):
    __tablename__ = "article"

    id: int | None = Field(default=None, primary_key=True)
    # Identity: the canonical link when the entry has one, else its guid.
    url: str = Field(unique=True, index=True)
    guid: str | None = Field(default=None, index=True)
    link: str | None = None  # what is fetched (as published)
    host: str = Field(default="", index=True)
    entry_title: str = ""
    entry_content: str = Field(default="", sa_column=Column(Text))
    first_seen: datetime = Field(sa_type=UTCTimestamp)
    last_checked: datetime | None = _when()
    next_check_at: datetime | None = _when(index=True)
    checks: int = 0
    failures: int = 0  # consecutive failed checks
    status: str = "tracking"  # tracking | retired
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    etag: str | None = None
    last_modified: str | None = None
    current_version: int | None = None  # the version number the page shows now
    # The version the page showed before the current one (what a revert is diffed from).
    previous_version: int | None = None
    # Checks in a row that went back to a text shown before: 1 is a revert, 2 a flip-flop.
    flips: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # The last checks' outcomes, oldest first: c changed, - same (watcher.pipeline.livepages).
    recent_checks: str = Field(default="", sa_column_kwargs={"server_default": ""})
    # Checks in a row whose page answered "gone" (404, 410, a redirect to the front page);
    # see watcher.pipeline.takedown. Failures of another kind leave it as it is.
    gone_checks: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Set while the article is taken down (the "removed" event); NULL again when restored.
    removed_at: datetime | None = _when()


class ArticleEventRow(SQLModel, table=True):
    """What happened to an article's page besides edits: ``removed``, ``restored``, ``moved``."""

    __tablename__ = "article_event"

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="article.id", index=True)
    kind: str  # removed | restored | moved
    at: datetime = Field(sa_type=UTCTimestamp)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    url: str | None = Field(default=None, sa_column=Column(Text))  # moved: the new URL
    status: int | None = None  # the HTTP status that said it, when one did


class ArticleAliasRow(SQLModel, table=True):
    """Another canonical URL naming a tracked article (where it moved to, or from): a feed
    entry naming it is that article, not a new one."""

    __tablename__ = "article_alias"

    url: str = Field(primary_key=True)
    article_id: int = Field(foreign_key="article.id", index=True)


class ArticleFeedRow(SQLModel, table=True):
    """Which feeds an article appeared in (one article may be in several)."""

    __tablename__ = "article_feed"

    article_id: int = Field(foreign_key="article.id", primary_key=True)
    feed_id: int = Field(foreign_key="feed.id", primary_key=True, index=True)
    first_seen: datetime = Field(sa_type=UTCTimestamp)


class VersionRow(SQLModel, table=True):
    __tablename__ = "version"
    __table_args__ = (
        UniqueConstraint("article_id", "content_hash", name="uq_version_content"),
        UniqueConstraint("article_id", "number", name="uq_version_number"),
    )

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="article.id", index=True)
    number: int
    title: str = Field(sa_column=Column(Text, nullable=False))
    text: str = Field(sa_column=Column(Text, nullable=False))  # as extracted
    content_hash: str
    source: str  # page | feed
    fetched_at: datetime = Field(sa_type=UTCTimestamp)
    last_seen_at: datetime = Field(sa_type=UTCTimestamp)
    times_seen: int = 1  # > 1 when the page went back to this text later (revert, A/B flip)
    # The original response in the WARC archive (see watcher.storage.archive): file name,
    # offset and length of its records. NULL when the archive is off or the text came from
    # the feed.
    warc_file: str | None = Field(default=None, index=True)
    warc_offset: int | None = Field(default=None, sa_type=BigInteger)
    warc_length: int | None = Field(default=None, sa_type=BigInteger)
    # Paragraphs of the article's region the extractor dropped: compared, not shown.
    extra: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    # What kind of change made this version, space separated (see watcher.pipeline.classes).
    classes: str = Field(default="", sa_column_kwargs={"server_default": ""})


class AlertRow(SQLModel, table=True):
    __tablename__ = "alert"
    __table_args__ = (
        UniqueConstraint("rule", "version_id", "occurrence", name="uq_alert_occurrence"),
        Index("ix_alert_created", "created_at"),
        # The web view's lists of one rule's or one feed's alerts, newest first (migration 4).
        Index("ix_alert_rule", "rule", "id"),
        Index("ix_alert_feed", "feed", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    rule: str
    event: str  # new | changed | unhealthy | recovered (feed health, rule HEALTH_RULE)
    # None for feed-health alerts, which belong to a feed, not to an article's version.
    article_id: int | None = Field(default=None, foreign_key="article.id", index=True)
    version_id: int | None = Field(default=None, foreign_key="version.id")
    feed: str = ""
    matched: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON list
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON excerpts
    created_at: datetime = Field(sa_type=UTCTimestamp)
    # 0 for the alerts a new version raises; for a revert to an earlier version, the check
    # that saw it (a version may be gone back to more than once, each time news); for a
    # removed or restored article, minus the article_event's id.
    occurrence: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # new: not yet routed to notifiers; routed: one delivery row per notifier exists.
    delivery_state: str = Field(default="new", index=True)
    delivered_at: datetime | None = _when()  # when the last of its deliveries was sent


class DeliveryRow(SQLModel, table=True):
    """The outbox: one row per (alert, notifier), with its own state and retry schedule."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("alert_id", "notifier", name="uq_delivery_alert_notifier"),
        Index("ix_delivery_due", "state", "next_try_at"),
        Index("ix_delivery_notifier", "notifier", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True)
    notifier: str
    state: str = "pending"  # pending | retrying | sent | gave_up
    attempts: int = 0
    created_at: datetime = Field(sa_type=UTCTimestamp)
    next_try_at: datetime | None = _when()
    last_try_at: datetime | None = _when()
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    sent_at: datetime | None = _when()
    # JSON list of the notifier's services (target keys) that already took this alert: a
    # retry goes only to the others, so a working service never gets it twice.
    done_targets: str = Field(default="[]", sa_column=Column(Text, nullable=False))


class FeedHealthRow(SQLModel, table=True):
    """A feed problem that has been alerted and not yet healed: present while it lasts, so
    each problem raises one "unhealthy" alert and one "recovered" alert, never one per poll."""

    __tablename__ = "feed_health"

    feed: str = Field(primary_key=True)
    problem: str = Field(primary_key=True)  # errors | stale | checks
    since: datetime = Field(sa_type=UTCTimestamp)
    reason: str = Field(sa_column=Column(Text, nullable=False))


class SentMessageRow(SQLModel, table=True):
    """Each message handed to a notifier: what rate limits count."""

    __tablename__ = "sent_message"
    __table_args__ = (Index("ix_sent_message_notifier_time", "notifier", "sent_at"),)

    id: int | None = Field(default=None, primary_key=True)
    notifier: str
    sent_at: datetime = Field(sa_type=UTCTimestamp)
    alerts: int = 1


class SiteLineRow(SQLModel, table=True):
    """How many articles of a host carried a line (digits masked): page-furniture learning."""

    __tablename__ = "site_line"

    host: str = Field(primary_key=True)
    key_digest: str = Field(primary_key=True)
    articles: int = 0


class WorkerRow(SQLModel, table=True):
    """A ``watcher worker`` process (queue mode): who it is, and what it has done so far."""

    __tablename__ = "worker"

    id: str = Field(primary_key=True)  # host:pid:random, unique per start
    host: str
    pid: int
    concurrency: int
    started_at: datetime = Field(sa_type=UTCTimestamp)
    last_seen: datetime = Field(sa_type=UTCTimestamp, index=True)
    processed: int = 0  # jobs finished (any outcome)
    failed: int = 0  # jobs that raised (a database outage, a bug)
    stopped_at: datetime | None = _when()


class HostSlotRow(SQLModel, table=True):
    """One of a host's ``fetch.per_host`` request slots, taken by a worker (queue mode): the
    politeness limit holds across every worker. A slot whose holder died frees itself when
    ``expires_at`` passes."""

    __tablename__ = "host_slot"

    host: str = Field(primary_key=True)
    slot: int = Field(primary_key=True)
    holder: str
    expires_at: datetime = Field(sa_type=UTCTimestamp)


class MetaRow(SQLModel, table=True):
    __tablename__ = "watcher_meta"

    key: str = Field(primary_key=True)
    value: str


# Every table above by name: what the queries of watcher.storage.reads run on in the Store.
TABLES: Mapping[str, Table] = SQLModel.metadata.tables
