"""A ``watcher worker`` whose database goes away and comes back, twice: its connections to a
real PostgreSQL pass through a loopback TCP proxy the test cuts (every connection dropped,
new ones hung up on) and restores. The worker logs one line when each outage starts and one
when it ends, tries again with back-off meanwhile (not in a tight loop: the proxy counts the
attempts), takes jobs again afterwards (the edits made after each outage are stored and
alerted once), and still stops with exit 0 on SIGTERM.

Skipped unless WATCHER_TEST_POSTGRES_URL is set (the test gets a schema of its own).
"""

from __future__ import annotations

import random
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import create_engine

from support.desk import Desk, wait_caught_up, write_config
from support.newsroom import Newsroom
from support.processes import stop, wait_for
from support.proxy import TcpProxy
from support.receivers import Webhook
from watcher.storage.engine import engine_url

pytestmark = pytest.mark.postgres
OUTAGES = 2
OUTAGE_SECONDS = 6.0  # long enough for several tries: 1 s, 2 s, 4 s
# Connection attempts one worker may make in one outage: its back-off, its registry beat
# (every second here), the pool's own tries. A tight loop would make thousands.
MOST_ATTEMPTS = 40
LOST, BACK = "database lost: ", "database back after "


def through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


def logged(log: Path, line: str) -> int:
    return log.read_text().count(line)


def test_a_worker_rides_out_database_outages(
    tmp_path: Path, pg_url: str, room: Newsroom, hook: Webhook
) -> None:
    server = urlsplit(pg_url)
    rng = random.Random(8)
    with TcpProxy(server.hostname or "127.0.0.1", server.port or 5432) as proxy:
        config = write_config(tmp_path, room, through(pg_url, proxy.port), hook.url)
        engine = create_engine(engine_url(pg_url))  # the oracle goes straight to the server
        desk = Desk(room, engine, config, tmp_path / "logs", hook)
        log = desk.logs / "worker-1.log"
        attempts = []
        with ExitStack() as stack:
            worker = desk.start(stack)
            wait_caught_up(desk, "the first versions")
            for outage in range(1, OUTAGES + 1):
                before = proxy.hung_up
                proxy.cut()
                wait_for(lambda n=outage: logged(log, LOST) >= n, 60, "the outage noticed")
                time.sleep(OUTAGE_SECONDS)
                attempts.append(proxy.hung_up - before)
                proxy.restore()
                desk.edit(f"s{outage}", rng)
                wait_caught_up(desk, f"the edit after outage {outage}")
                wait_for(lambda n=outage: logged(log, BACK) >= n, 60, "the worker back")
            assert stop(worker) == 0
        engine.dispose()
    text = log.read_text()
    assert text.count(LOST) == OUTAGES, text
    assert text.count(BACK) == OUTAGES, text
    assert "Traceback" not in text, text
    errors = [line for line in text.splitlines() if line.startswith("ERROR")]
    assert len(errors) == OUTAGES and all(LOST in line for line in errors), text
    loggers = {line.split(" ", 2)[1] for line in text.splitlines() if line[:1].isupper()}
    assert not {name for name in loggers if name.startswith(("psycopg", "procrastinate"))}
    assert all(0 < tries <= MOST_ATTEMPTS for tries in attempts), attempts
    desk.assert_consistent()
    assert desk.repeats() == 0
