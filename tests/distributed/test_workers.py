"""Several real ``watcher worker`` processes on a real PostgreSQL, against the loopback
newsroom, alerts counted at a real webhook receiver.

- edits are stored once and alerted once, however many workers run; SIGTERM exits 0;
- ``kill -9`` of a worker at random moments (seeded): its jobs are handed back once its
  heartbeat is ``stalled_after`` old, and nothing is lost or doubled; repeats at the receiver
  stay within the README's window (PARALLEL_SENDS messages per kill);
- ``fetch.per_host`` holds across workers (the server counts requests under way);
- ``watcher status --json`` lists the workers and the queue.

Skipped unless WATCHER_TEST_POSTGRES_URL is set (each test gets a schema of its own).
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from support.desk import STORIES, Concurrency, Desk, wait_caught_up, write_config
from support.newsroom import Newsroom
from support.processes import cli, stop
from support.receivers import Webhook
from watcher.delivery.outbox import PARALLEL_SENDS
from watcher.storage.engine import engine_url

pytestmark = pytest.mark.postgres


def test_workers_store_and_alert_each_edit_once(desk: Desk) -> None:
    rng = random.Random(11)
    with ExitStack() as stack:
        workers = [desk.start(stack) for _ in range(3)]
        wait_caught_up(desk, "the first versions")
        for slug in ("s0", "s2"):
            desk.edit(slug, rng)
        wait_caught_up(desk, "the edits")
        status = json.loads(cli(desk.config, "status", "--json").stdout)
        assert [w["state"] for w in status["workers"]] == ["running"] * 3
        assert sum(w["processed"] for w in status["workers"]) > 0  # counts beat every 1 s
        assert set(status["queue"]) == {"todo", "doing", "stalled", "failed"}
        assert [stop(worker) for worker in workers] == [0, 0, 0]
    assert desk.assert_consistent() == STORIES + 2
    assert desk.repeats() == 0
    received = desk.hook.alert_ids()
    assert sorted(received) == sorted(desk.recorded())
    for i in range(3):
        log = (desk.logs / f"worker-{i + 1}.log").read_text()
        assert "Traceback" not in log, log
    status = json.loads(cli(desk.config, "status", "--json").stdout)
    assert [w["state"] for w in status["workers"]] == ["stopped"] * 3
    assert sum(w["processed"] for w in status["workers"]) > 0


def kill_harness(desk: Desk, iterations: int, seed: int) -> None:
    rng = random.Random(seed)
    kills = 0
    with ExitStack() as stack:
        workers = [desk.start(stack) for _ in range(3)]
        wait_caught_up(desk, "the first versions")
        for _ in range(iterations):
            for slug in rng.sample(sorted(desk.room.stories), 2):
                desk.edit(slug, rng)
            time.sleep(rng.uniform(0.0, 1.5))  # into the polls, checks and sends
            victim = rng.randrange(len(workers))
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            kills += 1
            workers[victim] = desk.start(stack)
        wait_caught_up(desk, "every edit after the kills")
        assert [stop(worker) for worker in workers] == [0] * len(workers)
    desk.assert_consistent()
    received = desk.hook.alert_ids()
    assert set(received) == set(desk.recorded())
    # A kill repeats at most the messages in flight to one notifier (README: the window).
    assert desk.repeats() <= kills * PARALLEL_SENDS


def test_kill_9_workers(desk: Desk) -> None:
    kill_harness(desk, iterations=int(os.environ.get("WATCHER_KILL_ITERATIONS", "20")), seed=5)


@pytest.mark.slow
def test_kill_9_workers_long(desk: Desk) -> None:
    kill_harness(desk, iterations=100, seed=6)


def test_per_host_limit_holds_across_workers(
    tmp_path: Path, pg_url: str, room: Newsroom, hook: Webhook
) -> None:
    """Two workers, ``per_host: 1``: the site never has two requests under way at once."""
    busy = Concurrency()
    for story in room.stories.values():
        room.server.route(story.path(), busy.wrap(lambda r, s=story.slug: room._page(s)))
    config = write_config(tmp_path, room, pg_url, hook.url, per_host=1)
    engine = create_engine(engine_url(pg_url))
    desk = Desk(room, engine, config, tmp_path / "logs", hook)
    try:
        with ExitStack() as stack:
            workers = [desk.start(stack) for _ in range(2)]
            wait_caught_up(desk, "the first versions")
            assert [stop(worker) for worker in workers] == [0, 0]
    finally:
        engine.dispose()
    assert busy.most == 1
    assert busy.calls >= STORIES
