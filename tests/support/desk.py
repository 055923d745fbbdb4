"""The scale-out tests' desk: the loopback newsroom, its edits, the config of a worker pool
on PostgreSQL, the database as the oracle (one version per served text, one alert per
version) and the worker processes."""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ProgrammingError

from support.newsroom import Newsroom, harness_config
from support.processes import running, wait_for
from support.receivers import Webhook
from support.server import Reply, Request

STORIES = 4
CATCH_UP = float(os.environ.get("WATCHER_CATCH_UP", "60"))
STALLED_AFTER = "3s"


def edit_paragraph(rng: random.Random) -> str:
    """A sentence no page has carried before (so no furniture learning can swallow it)."""
    words = ["".join(rng.choice("bcdfghjklmnprstvwz") + rng.choice("aeiou") for _ in range(3))]
    words += [rng.choice(("harbour", "convoy", "envoy", "bridge", "talks")) for _ in range(8)]
    return " ".join(words).capitalize() + f" {rng.choice(('reopened', 'delayed'))}."


def write_config(
    directory: Path,
    room: Newsroom,
    url: str,
    hook: str,
    per_host: int = 4,
    recheck: str = "1s",
) -> Path:
    config = directory / "watcher.yaml"
    queue = f"queue: {{kind: procrastinate, stalled_after: {STALLED_AFTER}}}\n"
    fetch = f", per_host: {per_host}"
    config.write_text(harness_config(room, url, hook, head=queue, fetch=fetch, every=recheck))
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


def wait_caught_up(desk: Desk, what: str) -> None:
    wait_for(desk.caught_up, CATCH_UP, what, step=0.2)


class Concurrency:
    """Counts the requests a handler has under way at once (each held ``hold`` seconds)."""

    def __init__(self, hold: float = 0.05) -> None:
        self.lock = threading.Lock()
        self.hold = hold
        self.now = self.most = self.calls = 0

    def wrap(self, handler: object) -> object:
        def counted(request: Request) -> Reply:
            with self.lock:
                self.now += 1
                self.calls += 1
                self.most = max(self.most, self.now)
            try:
                time.sleep(self.hold)
                return handler(request)  # type: ignore[operator, no-any-return]
            finally:
                with self.lock:
                    self.now -= 1

        return counted
