"""Schema creation and numbered migrations.

The first run creates every table from :mod:`watcher.schema` and records the schema version
in ``watcher_meta``. A later schema change appends a function to ``MIGRATIONS``: on start-up
each one newer than the recorded version runs, in order, in one transaction with the version
bump, so an interrupted upgrade is retried whole on the next start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Connection, inspect, select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from watcher import schema
from watcher.errors import StoreError

log = logging.getLogger(__name__)

Migration = Callable[[Connection], None]

# MIGRATIONS[n] upgrades a database from schema version n + 1 to n + 2.
MIGRATIONS: list[Migration] = []

_meta = schema.MetaRow.__table__  # type: ignore[attr-defined]


def current_version(connection: Connection) -> int | None:
    if not inspect(connection).has_table(_meta.name):
        return None
    value = connection.execute(
        select(_meta.c.value).where(_meta.c.key == "schema_version")
    ).scalar()
    return int(value) if value is not None else None


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to :data:`schema.SCHEMA_VERSION`."""
    target = len(MIGRATIONS) + 1
    assert target == schema.SCHEMA_VERSION, "add a migration when SCHEMA_VERSION changes"
    with engine.begin() as connection:
        found = current_version(connection)
        if found is None:
            SQLModel.metadata.create_all(connection)
            connection.execute(_meta.insert().values(key="schema_version", value=str(target)))
            log.info("created database schema version %d", target)
            return
        if found > target:
            raise StoreError(
                f"schema version {found} is newer than this watcher understands ({target}); "
                "upgrade watcher"
            )
        for version in range(found, target):
            log.info("migrating database schema %d -> %d", version, version + 1)
            MIGRATIONS[version - 1](connection)
        if found != target:
            connection.execute(
                _meta.update().where(_meta.c.key == "schema_version").values(value=str(target))
            )
