"""Schema creation and numbered migrations.

The first run creates every table from :mod:`watcher.storage.schema` and records the schema version
in ``watcher_meta``. A later schema change appends a function to ``MIGRATIONS``: on start-up
each one newer than the recorded version runs, in order, in one transaction with the version
bump, so an interrupted upgrade is retried whole on the next start.

Only the writers (``run``, ``check``) create or migrate. Read-only commands look with
:func:`watcher.storage.reads.require_schema`, which writes nothing: a missing or older schema
is an error telling what to run, so a ``watcher status`` never creates a database nor
upgrades one from under an older daemon still running on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import Connection, MetaData, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlmodel import SQLModel

from watcher.storage import schema
from watcher.storage.engine import EngineSql
from watcher.storage.reads import refuse_newer, schema_version

log = logging.getLogger(__name__)

Migration = Callable[[Connection], None]
# How often opening a database looks again while another process is creating its schema
# (about 4.5 s in all: creating the schema takes a fraction of a second).
SCHEMA_RACE_TRIES = 10


def _add_outbox(connection: Connection) -> None:
    """2: the delivery outbox (alerts recorded before it existed are routed like new ones),
    feed-health alerts (an alert may belong to a feed, not to an article's version) and
    ``feed.disabled_at`` for feeds that answered 410 Gone."""
    column_type = schema.UTCTimestamp().compile(dialect=connection.dialect)
    connection.execute(text(f"ALTER TABLE feed ADD COLUMN disabled_at {column_type}"))
    _alert_columns_nullable(connection)
    SQLModel.metadata.create_all(
        connection,
        tables=[
            schema.DeliveryRow.__table__,  # type: ignore[attr-defined]
            schema.SentMessageRow.__table__,  # type: ignore[attr-defined]
            schema.FeedHealthRow.__table__,  # type: ignore[attr-defined]
        ],
    )
    alert = schema.AlertRow.__table__  # type: ignore[attr-defined]
    connection.execute(
        alert.update().where(alert.c.delivery_state == "pending").values(delivery_state="new")
    )


def _alert_columns_nullable(connection: Connection) -> None:
    """alert.article_id and alert.version_id lose NOT NULL. PostgreSQL says so directly;
    SQLite cannot alter a column, so the table is rebuilt and its rows copied."""
    if connection.dialect.name != "sqlite":
        for column in ("article_id", "version_id"):
            connection.execute(text(f"ALTER TABLE alert ALTER COLUMN {column} DROP NOT NULL"))
        return
    _rebuild_alert_table(connection)


def _rebuild_alert_table(connection: Connection) -> None:
    """SQLite cannot alter a column or a constraint: the alert table is made again as the
    schema has it now and the rows copied (columns it did not have take their defaults).

    SQLite's own recipe: build the new table under another name, copy, drop the old one,
    rename. Renaming the *old* table instead would rewrite the delivery table's reference to
    follow it (foreign keys are on), and the reference would die with it. The foreign-key
    check waits for the commit, when every delivery's alert exists again.
    """
    alert = schema.AlertRow.__table__  # type: ignore[attr-defined]
    old_indexes = [index["name"] for index in inspect(connection).get_indexes("alert")]
    old_columns = {column["name"] for column in inspect(connection).get_columns("alert")}
    connection.execute(text("PRAGMA defer_foreign_keys = ON"))
    for name in old_indexes:  # their names are needed again
        connection.execute(text(f'DROP INDEX IF EXISTS "{name}"'))
    # A scratch MetaData, with the tables its foreign keys name: the schema's own must not
    # gain an "alert_new" that create_all would make in every new database.
    scratch = MetaData()
    for referred in (schema.ArticleRow, schema.VersionRow):
        referred.__table__.to_metadata(scratch)  # type: ignore[union-attr]
    rebuilt = alert.to_metadata(scratch, name="alert_new")
    rebuilt.create(connection)
    columns = ", ".join(column.name for column in alert.columns if column.name in old_columns)
    connection.execute(text(f"INSERT INTO alert_new ({columns}) SELECT {columns} FROM alert"))
    connection.execute(text("DROP TABLE alert"))
    connection.execute(text("ALTER TABLE alert_new RENAME TO alert"))


def _add_body_digest(connection: Connection) -> None:
    """3: ``feed.body_digest``, so a feed that sends the same bytes again is not parsed again
    (NULL at first: every feed's next body is parsed once)."""
    feed = schema.FeedRow.__table__  # type: ignore[attr-defined]
    column_type = feed.c.body_digest.type.compile(dialect=connection.dialect)
    connection.execute(text(f"ALTER TABLE feed ADD COLUMN body_digest {column_type}"))


def _add_warc_columns(connection: Connection) -> None:
    """4: where each version's original response is in the WARC archive (NULL for the
    versions before: they were not archived)."""
    version = schema.VersionRow.__table__  # type: ignore[attr-defined]
    for name in ("warc_file", "warc_offset", "warc_length"):
        column_type = version.c[name].type.compile(dialect=connection.dialect)
        connection.execute(text(f"ALTER TABLE version ADD COLUMN {name} {column_type}"))
    connection.execute(text("CREATE INDEX ix_version_warc_file ON version (warc_file)"))


def _add_alert_list_indexes(connection: Connection) -> None:
    """5: indexes for the web view's lists of one rule's or one feed's alerts (its Atom
    feeds are polled: each poll must not scan every alert)."""
    alert = schema.AlertRow.__table__  # type: ignore[attr-defined]
    for index in alert.indexes:
        if index.name in ("ix_alert_rule", "ix_alert_feed"):
            index.create(connection, checkfirst=True)  # migration 2 may have made it


def _add_edit_tracking(connection: Connection) -> None:
    """6: what the extractor dropped (``version.extra``), edit classes (``version.classes``),
    reverts (``article.previous_version``, ``article.flips``, ``alert.occurrence`` in the
    alert's unique key, so a version gone back to raises its own alert)."""
    columns = (
        ("version", "extra TEXT NOT NULL DEFAULT ''"),
        ("version", "classes VARCHAR NOT NULL DEFAULT ''"),
        ("article", "previous_version INTEGER"),
        ("article", "flips INTEGER NOT NULL DEFAULT 0"),
    )
    for table, column in columns:
        connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {column}"))
    if connection.dialect.name == "sqlite":
        _rebuild_alert_table(connection)
        return
    connection.execute(text("ALTER TABLE alert ADD COLUMN occurrence INTEGER NOT NULL DEFAULT 0"))
    connection.execute(text("ALTER TABLE alert DROP CONSTRAINT uq_alert_rule_version"))
    connection.execute(
        text(
            "ALTER TABLE alert ADD CONSTRAINT uq_alert_occurrence "
            "UNIQUE (rule, version_id, occurrence)"
        )
    )


def _add_queue_tables(connection: Connection) -> None:
    """7: the scale-out mode's tables: ``worker`` (who runs, what each has done) and
    ``host_slot`` (per-host politeness across workers); on PostgreSQL also Procrastinate's own
    schema (its jobs, locks and periodic defers), see :func:`apply_queue_schema`."""
    SQLModel.metadata.create_all(
        connection,
        tables=[
            schema.WorkerRow.__table__,  # type: ignore[attr-defined]
            schema.HostSlotRow.__table__,  # type: ignore[attr-defined]
        ],
    )
    apply_queue_schema(connection)


def _add_takedowns(connection: Connection) -> None:
    """8: take-downs and moves: ``article.gone_checks`` and ``article.removed_at``, the
    ``article_event`` table (removed, restored, moved) and ``article_alias`` (the other URLs
    of a moved article)."""
    column_type = schema.UTCTimestamp().compile(dialect=connection.dialect)
    for column in ("gone_checks INTEGER NOT NULL DEFAULT 0", f"removed_at {column_type}"):
        connection.execute(text(f"ALTER TABLE article ADD COLUMN {column}"))
    SQLModel.metadata.create_all(
        connection,
        tables=[
            schema.ArticleEventRow.__table__,  # type: ignore[attr-defined]
            schema.ArticleAliasRow.__table__,  # type: ignore[attr-defined]
        ],
    )


def apply_queue_schema(connection: Connection) -> bool:
    """Create Procrastinate's schema in the current schema (``search_path``) of a PostgreSQL
    database unless it is there; returns whether it is there now.

    PostgreSQL only (the queue needs it; SQLite databases never get it), and only when
    Procrastinate is installed (the ``distributed`` extra): an installation that adds it
    later gets the schema from ``watcher worker``, which calls this again."""
    if connection.dialect.name != "postgresql":
        return False
    if connection.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar():
        return True
    try:
        from procrastinate.schema import SchemaManager
    except ImportError:
        log.info("Procrastinate is not installed: its queue schema is left for `watcher worker`")
        return False
    # The raw driver: the schema is many statements, and its text holds `%` signs that a
    # parameter-substituting layer would mangle.
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute(SchemaManager.get_schema())
    log.info("created Procrastinate's queue schema")
    return True


def _add_recent_checks(connection: Connection) -> None:
    """9: ``article.recent_checks``, each article's last check outcomes (live pages, see
    watcher.pipeline.livepages). Safe to run where the column exists already, so its place in
    the numbering can move."""
    if "recent_checks" in {c["name"] for c in inspect(connection).get_columns("article")}:
        return
    connection.execute(
        text("ALTER TABLE article ADD COLUMN recent_checks VARCHAR NOT NULL DEFAULT ''")
    )


# MIGRATIONS[n] upgrades a database from schema version n + 1 to n + 2.
MIGRATIONS: list[Migration] = [
    _add_outbox,
    _add_body_digest,
    _add_warc_columns,
    _add_alert_list_indexes,
    _add_edit_tracking,
    _add_queue_tables,
    _add_takedowns,
    _add_recent_checks,
]

_meta = schema.MetaRow.__table__  # type: ignore[attr-defined]


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to :data:`schema.SCHEMA_VERSION`.

    Two processes opening a new database at once (the daemon starting, a ``watcher alerts``
    beside it) may both see no schema; the second one's tables or version row then collide
    with the first one's ("already exists", a unique key), and a second look finds the
    schema made."""
    for attempt in range(SCHEMA_RACE_TRIES):
        try:
            _migrate(engine)
            return
        except (IntegrityError, OperationalError, ProgrammingError) as exc:
            if attempt == SCHEMA_RACE_TRIES - 1:
                raise
            log.info("schema: %s; another process is creating it, looking again", exc.orig)
            time.sleep(0.1 * (attempt + 1))


def _migrate(engine: Engine) -> None:
    target = len(MIGRATIONS) + 1
    assert target == schema.SCHEMA_VERSION, "add a migration when SCHEMA_VERSION changes"
    with engine.begin() as connection:
        found = schema_version(EngineSql(connection))
        if found is None:
            SQLModel.metadata.create_all(connection)
            apply_queue_schema(connection)
            connection.execute(_meta.insert().values(key="schema_version", value=str(target)))
            log.info("created database schema version %d", target)
            return
        refuse_newer(found, target)
        for version in range(found, target):
            log.info("migrating database schema %d -> %d", version, version + 1)
            MIGRATIONS[version - 1](connection)
        if found != target:
            connection.execute(
                _meta.update().where(_meta.c.key == "schema_version").values(value=str(target))
            )
