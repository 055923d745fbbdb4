"""The Procrastinate app of a config: its connector (the config's PostgreSQL database, with
its ``search_path``) and watcher's jobs."""

from __future__ import annotations

import procrastinate

from watcher.config.models import Config
from watcher.distributed.jobs import register_jobs


def conninfo(url: str) -> str:
    """A libpq connection string from watcher's database URL (psycopg takes URIs; the
    SQLAlchemy driver suffix is not libpq's)."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    return url


def build_app(config: Config) -> procrastinate.App:
    connector = procrastinate.PsycopgConnector(
        conninfo=conninfo(config.database_url()),
        # A worker needs a connection for the listener, one for fetching jobs and the
        # heartbeat, and a few for the jobs' own Procrastinate calls (defers, retries).
        min_size=1,
        max_size=4,
    )
    app = procrastinate.App(connector=connector)
    register_jobs(app)
    return app
