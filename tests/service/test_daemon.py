"""``watcher run`` as a user starts it: a subprocess against a loopback newsroom."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from support.newsroom import Newsroom, make_story
from support.processes import daemon, stop, wait_for
from support.server import LoopbackServer
from watcher.storage.store import Store


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


def test_sighup_reloads_the_config_and_refuses_a_bad_one(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    room = Newsroom(loopback).attach()
    room.add(make_story("talks", "Story talks", seed=1))
    config = tmp_path / "watcher.yaml"
    database = tmp_path / "watcher.db"
    head = f"""
database: "sqlite:///{database}"
allow_private_networks: true
defaults: {{interval: 1s, recheck: [{{until: 1h, every: 1s}}]}}
rules: [{{name: edits, events: [changed]}}]
feeds:
  - {{name: rss, url: "{room.url("/rss.xml")}"}}
"""
    config.write_text(head)
    log = tmp_path / "run.log"
    with daemon(config, log) as process:
        wait_for(lambda: "watching 1 feeds" in log.read_text(), 20, "the start")
        assert not loopback.requests_to("/atom.xml")
        config.write_text(head + f'  - {{name: atom, url: "{room.url("/atom.xml")}"}}\n')
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: len(loopback.requests_to("/atom.xml")) >= 2, 20, "the added feed")
        assert "config reloaded" in log.read_text() and "atom added" in log.read_text()
        config.write_text(head + "  - {name: broken, url: ftp://nowhere}\n")
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: "config not reloaded" in log.read_text(), 20, "the refusal")
        assert "feeds[1].url" in log.read_text()
        polled = len(loopback.requests_to("/atom.xml"))
        wait_for(lambda: len(loopback.requests_to("/atom.xml")) > polled, 20, "polls go on")
        assert stop(process) == 0, log.read_text()
    assert "Traceback" not in log.read_text()


def test_a_restart_does_not_poll_every_feed_again_at_once(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    room = Newsroom(loopback).attach()
    room.add(make_story("talks", "Story talks", seed=1))
    config = tmp_path / "watcher.yaml"
    feeds = "".join(
        f'  - {{name: f{i}, url: "{room.url(path)}?copy={i}"}}\n'
        for i, path in enumerate(["/rss.xml", "/atom.xml", "/feed.json"] * 4)
    )
    config.write_text(
        f"""
database: "sqlite:///{tmp_path / "watcher.db"}"
allow_private_networks: true
defaults: {{interval: 1m, recheck: [{{until: 1h, every: 1m}}]}}
feeds:
{feeds}"""
    )

    def feed_requests() -> int:
        return sum(len(loopback.requests_to(p)) for p in ("/rss.xml", "/atom.xml", "/feed.json"))

    for run in range(2):
        log = tmp_path / f"run-{run}.log"
        with daemon(config, log) as process:
            wait_for(lambda log=log: "watching 12 feeds" in log.read_text(), 20, "the start")
            if run == 0:
                wait_for(lambda: feed_requests() >= 12, 30, "every feed polled once")
            before = feed_requests()
            time.sleep(4)
            if run == 1:  # every feed was polled less than a minute ago: none is due yet
                assert feed_requests() == before
            assert stop(process) == 0


def test_sigterm_in_the_middle_of_the_work_exits_0_and_leaves_a_consistent_database(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    room = Newsroom(loopback).attach()
    for i in range(12):
        room.add(make_story(f"story-{i}", f"Story number {i}", seed=i))
    database = tmp_path / "watcher.db"
    config = tmp_path / "watcher.yaml"
    config.write_text(
        f"""
database: "sqlite:///{database}"
allow_private_networks: true
defaults: {{interval: 1m, recheck: [{{until: 1h, every: 1m}}]}}
fetch: {{concurrency: 2}}
feeds: [{{name: loop, url: "{room.url("/rss.xml")}"}}]
"""
    )
    log = tmp_path / "run.log"
    with daemon(config, log) as process:
        # Stop while the first articles are being fetched and stored, not before or after.
        wait_for(lambda: "new, version 1" in log.read_text(), 30, "the first stored article")
        assert stop(process) == 0, log.read_text()
    assert "SIGTERM received" in log.read_text() and "Traceback" not in log.read_text()
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = db.execute("SELECT count(*), count(DISTINCT article_id) FROM version").fetchone()
    assert stored[0] == stored[1] >= 1  # whole checks only: one version per article checked
    assert stored[0] < 12  # the checks not yet started when SIGTERM came were left for later
    # The next run finishes the work: every article once, nothing doubled.
    log = tmp_path / "run-2.log"
    with daemon(config, log) as process:
        wait_for(lambda: "watching 1 feeds" in log.read_text(), 30, "the start")
        store = Store.open(f"sqlite:///{database}")
        try:
            wait_for(lambda: store.counts()["versions"] == 12, 60, "every article")
        finally:
            store.close()
        assert stop(process) == 0
    with sqlite3.connect(database) as db:
        per_article = db.execute("SELECT count(*) FROM version GROUP BY article_id").fetchall()
    assert per_article == [(1,)] * 12
