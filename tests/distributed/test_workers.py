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
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ProgrammingError

from support.db import database_url
from support.newsroom import Newsroom, make_story
from support.processes import cli, running, stop, wait_for
from support.receivers import Webhook
from support.server import LoopbackServer, Reply, Request
from watcher.delivery.outbox import PARALLEL_SENDS
from watcher.storage.engine import engine_url

pytestmark = pytest.mark.postgres
STORIES = 4
CATCH_UP = float(os.environ.get("WATCHER_CATCH_UP", "60"))
STALLED_AFTER = "3s"


def edit_paragraph(rng: random.Random) -> str:
    """A sentence no page has carried before (so no furniture learning can swallow it)."""
    words = ["".join(rng.choice("bcdfghjklmnprstvwz") + rng.choice("aeiou") for _ in range(3))]
    words += [rng.choice(("harbour", "convoy", "envoy", "bridge", "talks")) for _ in range(8)]
    return " ".join(words).capitalize() + f" {rng.choice(('reopened', 'delayed'))}."


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    with database_url("postgres", tmp_path) as url:
        yield url


@pytest.fixture
def room() -> Iterator[Newsroom]:
    with LoopbackServer() as server:
        newsroom = Newsroom(server).attach()
        for i in range(STORIES):
            newsroom.add(make_story(f"s{i}", f"Story {i} of the desk", seed=i))
        yield newsroom


@pytest.fixture
def hook() -> Iterator[Webhook]:
    receiver = Webhook()
    yield receiver
    receiver.close()


def write_config(directory: Path, room: Newsroom, url: str, hook: str, per_host: int = 4) -> Path:
    config = directory / "watcher.yaml"
    config.write_text(
        f"""
database: "{url}"
queue: {{kind: procrastinate, stalled_after: {STALLED_AFTER}}}
allow_private_networks: true
defaults: {{interval: 1s, recheck: [{{until: 1d, every: 1s}}]}}
fetch: {{deadline: 10s, per_host: {per_host}}}
feeds:
  - {{name: rss, url: "{room.url("/rss.xml")}"}}
  - {{name: atom, url: "{room.url("/atom.xml")}"}}
  - {{name: json, url: "{room.url("/feed.json")}"}}
notifiers: {{hook: "{hook}"}}
delivery: {{retry: {{first: 1s, max: 2s}}}}
# The desk edits stories faster than a live page's digest period: every alert must go now.
live_pages: {{enabled: false}}
rules:
  - {{name: all, events: [new], notify: [hook]}}
  - {{name: edits, events: [changed], notify: [hook]}}
"""
    )
    return config


@dataclass
class Desk:
    """The newsroom, its edits, the database's oracle and the worker processes."""

    room: Newsroom
    engine: Engine
    config: Path
    logs: Path
    hook: Webhook
    edits: dict[str, list[str]] = field(default_factory=dict)
    started: int = 0

    def start(self, stack: ExitStack) -> subprocess.Popen[bytes]:
        self.started += 1
        log = self.logs / f"worker-{self.started}.log"
        process = stack.enter_context(running(self.config, "worker", log))
        # Up: its signal handlers are in place (before that a SIGTERM kills it outright).
        wait_for(lambda: ": started (concurrency" in log.read_text(), 30, "a worker to start")
        return process

    def edit(self, slug: str, rng: random.Random) -> None:
        paragraph = edit_paragraph(rng)
        base = self.room.stories[slug].paragraphs[:7]
        self.room.edit(slug, paragraphs=[*base, paragraph])
        self.edits.setdefault(slug, []).append(paragraph)

    def caught_up(self) -> bool:
        """Every story's latest version is what is served now, every alert delivered."""
        try:
            return self._caught_up()
        except ProgrammingError:  # no schema yet: the first worker is still starting
            return False

    def _caught_up(self) -> bool:
        with self.engine.connect() as db:
            latest = dict(
                db.execute(
                    text(
                        "SELECT a.url, v.text FROM article a JOIN version v ON "
                        "v.article_id = a.id AND v.number = a.current_version"
                    )
                ).all()
            )
            unsent = db.execute(
                text(
                    "SELECT (SELECT count(*) FROM alert WHERE delivery_state = 'new') + "
                    "(SELECT count(*) FROM delivery WHERE state != 'sent')"
                )
            ).scalar()
        for story in self.room.stories.values():
            served = latest.get(self.room.url(story.path()))
            if served is None or story.paragraphs[-1] not in served:
                return False
        return unsent == 0 and set(self.recorded()) <= set(self.hook.alert_ids())

    def recorded(self) -> list[int]:
        with self.engine.connect() as db:
            return [int(i) for i in db.execute(text("SELECT id FROM alert")).scalars()]

    def assert_consistent(self) -> int:
        """One version per served text (in the order served), one alert per version."""
        with self.engine.connect() as db:
            versions = db.execute(
                text(
                    "SELECT a.url, v.number, v.text, v.id FROM version v "
                    "JOIN article a ON a.id = v.article_id ORDER BY a.url, v.number"
                )
            ).all()
            alerts = db.execute(text("SELECT rule, version_id FROM alert")).all()
        by_story: dict[str, list[int]] = {}
        for url, number, body, _ in versions:
            slug = url.rsplit("/", 1)[-1].removesuffix(".html")
            marks = self.edits.get(slug, [])
            state = next((i for i, mark in enumerate(marks) if mark in body), -1)
            by_story.setdefault(slug, []).append(state)
            assert number == len(by_story[slug]), f"{slug}: version numbers broken"
        for slug, states in by_story.items():
            assert len(set(states)) == len(states), f"{slug}: a text stored twice: {states}"
            assert states == sorted(states), f"{slug}: versions out of order: {states}"
        assert sorted(by_story) == sorted(self.room.stories)
        keys = [(rule, version) for rule, version in alerts]
        assert len(set(keys)) == len(keys), "an alert recorded twice"
        assert {v for _, v in alerts} == {row[3] for row in versions}, "a version without alert"
        return len(versions)

    def repeats(self) -> int:
        received = self.hook.alert_ids()
        return len(received) - len(set(received))


@pytest.fixture
def desk(tmp_path: Path, pg_url: str, room: Newsroom, hook: Webhook) -> Iterator[Desk]:
    config = write_config(tmp_path, room, pg_url, hook.url)
    engine = create_engine(engine_url(pg_url))
    yield Desk(room, engine, config, tmp_path / "logs", hook)
    engine.dispose()


def wait_caught_up(desk: Desk, what: str) -> None:
    wait_for(desk.caught_up, CATCH_UP, what, step=0.2)


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
        assert sum(w["processed"] for w in status["workers"]) >= 0
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
    busy = _Concurrency()
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


class _Concurrency:
    """Counts the requests a handler has under way at once (each held 50 ms)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = self.calls = 0

    def wrap(self, handler: object) -> object:
        def counted(request: Request) -> Reply:
            with self.lock:
                self.now += 1
                self.calls += 1
                self.most = max(self.most, self.now)
            try:
                time.sleep(0.05)
                return handler(request)  # type: ignore[operator, no-any-return]
            finally:
                with self.lock:
                    self.now -= 1

        return counted
