"""The database is where watcher thinks it is: a daemon whose database is deleted, replaced or
dropped stops with one line and exit 1; a read-only command never creates a database."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from support.db import POSTGRES_ENV, database_url
from support.newsroom import Newsroom, make_story
from support.processes import cli, daemon, wait_for
from support.server import LoopbackServer, Reply
from watcher.storage import schema
from watcher.storage.engine import database_label, engine_url
from watcher.storage.presence import DatabaseWatch, SchemaAnchor
from watcher.storage.store import Store

# The watch looks every 2 s; interpreter start-up and a loaded machine get the rest.
NOTICED_WITHIN = 10.0


def write_config(tmp_path: Path, url: str, feed_url: str) -> Path:
    config = tmp_path / "watcher.yaml"
    config.write_text(
        f"""
database: "{url}"
allow_private_networks: true
defaults: {{interval: 1s, recheck: [{{until: 1h, every: 1s}}]}}
feeds: [{{name: loop, url: "{feed_url}"}}]
"""
    )
    return config


def stops_with_one_line(
    tmp_path: Path, loopback: LoopbackServer, url: str, lose: Callable[[], None]
) -> str:
    """Start the daemon on ``url``, let it store an article, ``lose`` the database; returns
    the daemon's last stderr line once it has exited 1 by itself within NOTICED_WITHIN."""
    room = Newsroom(loopback).attach()
    room.add(make_story("talks", "Talks resume", seed=1))
    config = write_config(tmp_path, url, room.url("/rss.xml"))
    log = tmp_path / "run.log"
    with daemon(config, log) as process:
        wait_for(lambda: "new, version 1" in log.read_text(), 30, "the first stored article")
        lose()
        lost_at = time.monotonic()
        code = process.wait(timeout=NOTICED_WITHIN + 20)
        took = time.monotonic() - lost_at
    output = log.read_text()
    assert code == 1, output
    assert took < NOTICED_WITHIN, output
    assert "Traceback" not in output and "stopped; database" not in output
    return output.strip().splitlines()[-1]


# ------------------------------------------------------------------ daemon, SQLite


def test_run_stops_when_its_sqlite_file_is_deleted(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    database = tmp_path / "watcher.db"
    url = f"sqlite:///{database}"
    inode = 0

    def delete() -> None:
        nonlocal inode
        inode = database.stat().st_ino
        database.unlink()

    line = stops_with_one_line(tmp_path, loopback, url, delete)
    assert line == (
        f"watcher: error: database {url}: deleted or replaced while running "
        f"(inode {inode} → missing); stopping"
    )


def test_run_stops_when_its_sqlite_file_is_replaced(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    database = tmp_path / "watcher.db"
    url = f"sqlite:///{database}"

    def replace() -> None:  # as a restore from a backup does: a new file at the same path
        copy = tmp_path / "restored.db"
        shutil.copyfile(database, copy)
        os.replace(copy, database)

    line = stops_with_one_line(tmp_path, loopback, url, replace)
    new_inode = database.stat().st_ino
    assert re.fullmatch(
        rf"watcher: error: database {re.escape(url)}: deleted or replaced while running "
        rf"\(inode \d+ → inode {new_inode}\); stopping",
        line,
    ), line


# -------------------------------------------------------------- daemon, PostgreSQL


def postgres_admin(url: str) -> Callable[[str], object]:
    """Runs one statement on ``url`` (autocommit) and returns its first value, if any."""

    def execute(statement: str) -> object:
        engine = create_engine(engine_url(url), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                result = connection.execute(text(statement))
                return result.scalar() if result.returns_rows else None
        finally:
            engine.dispose()

    return execute


@pytest.mark.parametrize("dropped", ["schema", "table"])
def test_run_stops_when_its_postgres_tables_are_dropped(
    loopback: LoopbackServer, tmp_path: Path, dropped: str
) -> None:
    with database_url("postgres", tmp_path) as url:
        execute = postgres_admin(url)
        name = execute("SELECT current_schema()")
        # The schema is made again, empty, for the fixture to drop at the end.
        statements = {
            "schema": f'DROP SCHEMA "{name}" CASCADE; CREATE SCHEMA "{name}"',
            "table": "DROP TABLE watcher_meta",
        }
        line = stops_with_one_line(tmp_path, loopback, url, lambda: execute(statements[dropped]))
    label = database_label(url)
    assert line.startswith(f"watcher: error: database {label}: watcher's tables dropped")
    assert line.endswith(" missing); stopping")
    if dropped == "table":
        assert "(watcher_meta missing)" in line
    else:
        assert "and 11 more missing" in line  # all fourteen tables, three named


@contextmanager
def scratch_postgres_database() -> Iterator[tuple[str, Callable[[str], object]]]:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    name = f"watcher_loss_{uuid.uuid4().hex[:8]}"
    execute = postgres_admin(base)
    execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + f"/{name}", execute
    finally:
        execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_run_stops_when_its_postgres_database_is_dropped(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    with scratch_postgres_database() as (url, execute):
        name = url.rsplit("/", 1)[1]
        line = stops_with_one_line(
            tmp_path, loopback, url, lambda: execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        )
    assert line.startswith(f"watcher: error: database {database_label(url)}: dropped while running")
    assert f'database "{name}" does not exist' in line


def test_an_unreachable_server_is_waited_for_then_given_up() -> None:
    now = [0.0]
    url = "postgresql://postgres@127.0.0.1:1/nowhere"  # nothing listens: connection refused
    engine = create_engine(engine_url(url))
    watch = DatabaseWatch(SchemaAnchor(engine), url, patience=120, clock=lambda: now[0])
    try:
        assert watch.verdict() is None  # a server restarting: not a loss
        now[0] = 119.0
        assert watch.verdict() is None
        now[0] = 121.0
        gone = watch.verdict()
    finally:
        engine.dispose()
    assert gone is not None
    assert str(gone).startswith(f"database {database_label(url)}: unreachable for 121 s (")
    assert "refused" in str(gone)


# ------------------------------------------------------------------ watcher check


def test_check_reports_no_summary_when_its_database_vanished_during_the_pass(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    database = tmp_path / "watcher.db"
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        "<title>Talks</title><link>http://127.0.0.1:9/talks</link><guid>talks</guid>"
        "</item></channel></rss>"
    )

    def delete_then_answer(_request: object) -> Reply:
        database.unlink()  # while the pass runs: what it stores goes into the unlinked file
        return Reply(200, feed, {"Content-Type": "application/rss+xml"})

    loopback.route("/rss.xml", delete_then_answer)
    config = write_config(tmp_path, f"sqlite:///{database}", loopback.url("/rss.xml"))
    outcome = cli(config, "check")
    assert outcome.code == 1
    assert "feeds polled" not in outcome.stdout
    assert outcome.stderr.strip() == (
        f"watcher: error: database sqlite:///{database}: deleted or replaced while running "
        f"(inode {_inode_in(outcome.stderr)} → missing); this pass's results are not stored"
    )


def _inode_in(message: str) -> str:
    found = re.search(r"inode (\d+) →", message)
    assert found is not None, message
    return found.group(1)


# ------------------------------------------------------------ read-only commands

READERS = [["status"], ["status", "--json"], ["alerts"], ["feeds"]]
READERS += [["history", "http://x.example/a"], ["diff", "http://x.example/a"]]


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_a_reader_on_a_missing_sqlite_database_creates_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    database = tmp_path / "state" / "watcher.db"
    config = write_config(tmp_path, f"sqlite:///{database}", "http://x.example/rss")
    outcome = cli(config, *command)
    assert outcome.code == 1
    assert outcome.stdout == ""
    assert outcome.stderr == (
        f"watcher: error: database sqlite:///{database}: no database file {database} "
        "(`watcher check` or `watcher run` creates it)\n"
    )
    assert not database.parent.exists()


def test_a_reader_on_postgres_without_watcher_tables_creates_none(tmp_path: Path) -> None:
    with database_url("postgres", tmp_path) as url:
        config = write_config(tmp_path, url, "http://x.example/rss")
        outcome = cli(config, "status")
        tables = postgres_admin(url)(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
        )
    assert outcome.code == 1
    assert outcome.stderr == (
        f"watcher: error: database {database_label(url)}: no watcher tables in it yet "
        "(`watcher check` or `watcher run` creates it)\n"
    )
    assert tables == 0


def test_a_reader_does_not_upgrade_an_older_schema(tmp_path: Path) -> None:
    database = tmp_path / "watcher.db"
    Store.open(f"sqlite:///{database}").close()
    with sqlite3.connect(database) as db:
        db.execute("UPDATE watcher_meta SET value = '1' WHERE key = 'schema_version'")
    config = write_config(tmp_path, f"sqlite:///{database}", "http://x.example/rss")
    outcome = cli(config, "alerts")
    assert outcome.code == 1
    expected = f"schema version 1 is older than this watcher's ({schema.SCHEMA_VERSION})"
    assert expected in outcome.stderr
    assert "`watcher check` or `watcher run` does" in outcome.stderr
    with sqlite3.connect(database) as db:
        version = db.execute("SELECT value FROM watcher_meta WHERE key = 'schema_version'")
        assert version.fetchall() == [("1",)]
