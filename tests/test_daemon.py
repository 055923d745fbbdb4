"""``watcher run`` as a user starts it: a subprocess against a loopback newsroom."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from support.newsroom import Newsroom, make_story
from support.server import LoopbackServer
from watcher.store import Store


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_run_polls_rechecks_alerts_and_stops_on_sigterm(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    room = Newsroom(loopback).attach()
    for i, slug in enumerate(["talks", "storm"]):
        room.add(make_story(slug, f"Story {slug}", seed=i))
    config = tmp_path / "watcher.yaml"
    database = tmp_path / "watcher.db"
    config.write_text(
        f"""
database: "sqlite:///{database}"
allow_private_networks: true
defaults: {{interval: 1s, recheck: [{{until: 1h, every: 1s}}]}}
feeds: [{{name: loop, url: "{room.url("/rss.xml")}"}}]
rules: [{{name: edits, events: [changed]}}]
"""
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "watcher.cli", "-c", str(config), "run"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    store = None
    try:
        wait_for(database.exists, 20, "the database")
        store = Store.open(f"sqlite:///{database}")
        wait_for(lambda: store.counts()["versions"] == 2, 30, "two first versions")
        story = room.stories["talks"]
        room.edit("talks", paragraphs=[*story.paragraphs, "Talks collapsed on Friday."])
        wait_for(lambda: store.counts()["alerts"] == 1, 30, "the edit's alert")
        assert store.counts()["versions"] == 3
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=40)
    finally:
        if process.poll() is None:
            process.kill()
        if store is not None:
            store.close()
    assert process.returncode == 0, stderr
    assert "SIGTERM received" in stderr and "stopped" in stderr
