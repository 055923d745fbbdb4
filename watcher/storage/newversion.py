"""A new version's rows, written in the caller's transaction (the store's ``record_check``):
the version itself, in the driver's own SQL, and its alerts."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Connection

from watcher.records import CheckRecord, VersionRecord, from_row
from watcher.storage.alerts import insert_alerts
from watcher.storage.engine import driver_marker
from watcher.storage.schema import VersionRow
from watcher.storage.sqltext import db_value

_VERSION = VersionRow.__table__  # type: ignore[attr-defined]


def insert_version(connection: Connection, article_id: int, check: CheckRecord) -> VersionRecord:
    """Insert the next version and its alerts; the unique (article, hash) key may refuse it."""
    assert check.version is not None
    row: dict[str, Any] = {
        "article_id": article_id,
        "title": check.version.title,
        "text": check.version.text,
        "content_hash": check.version.content_hash,
        "source": check.version.source,
        "extra": check.version.extra,
        "classes": " ".join(check.version.classes),
        "fetched_at": check.checked_at,
        "last_seen_at": check.checked_at,
        "times_seen": 1,
        "warc_file": check.warc.file if check.warc else None,
        "warc_offset": check.warc.offset if check.warc else None,
        "warc_length": check.warc.length if check.warc else None,
    }
    dialect = connection.dialect.name
    params = (*(db_value(value, dialect) for value in row.values()), article_id)
    sql = _insert_version_sql(driver_marker(connection), tuple(row))
    version_id, number = connection.exec_driver_sql(sql, params).one()
    insert_alerts(connection, article_id, version_id, check.alerts, check.checked_at)
    return from_row(VersionRecord, {**row, "id": version_id, "number": number})


@functools.cache  # one per driver (the columns are always the same)
def _insert_version_sql(marker: str, columns: tuple[str, ...]) -> str:
    """A new version in one statement, in the driver's own SQL (the same on SQLite and
    PostgreSQL): its number, one past the article's highest, is worked out inside it, and
    its id and number come back. A read of the highest number and SQLAlchemy's INSERT cost
    twice the database's own work for it. The unique (article, number) key refuses a
    concurrent writer that took the same number, as it did the separate read's."""
    table = _VERSION.name
    values = ", ".join([marker] * len(columns))
    number = f"(SELECT COALESCE(MAX(number), 0) + 1 FROM {table} WHERE article_id = {marker})"
    return (
        f"INSERT INTO {table} ({', '.join(columns)}, number) VALUES ({values}, {number}) "
        "RETURNING id, number"
    )
