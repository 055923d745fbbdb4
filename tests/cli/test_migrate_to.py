"""``watcher migrate-to URL``: an installation that ran against the loopback newsroom is moved
from SQLite to PostgreSQL (and to another SQLite file where PostgreSQL is not configured),
and watcher opened on the copy shows the same history, alerts and outbox, and goes on.

The refusals: a target holding data (unless --replace), a source the daemon holds, a target
that is the source, no source database, an unreachable target."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.db import database_url
from support.newsroom import Newsroom, make_story
from support.processes import cli, watcher
from support.receivers import Webhook
from support.server import LoopbackServer
from watcher.service.lock import instance_lock
from watcher.storage.transfer import tables

TABLE_LINE = re.compile(r"^(\w+)\t(\d+)\t(\d+)\tok$", re.MULTILINE)


@pytest.fixture
def hook() -> Iterator[Webhook]:
    receiver = Webhook()
    yield receiver
    receiver.close()


@pytest.fixture
def room(loopback: LoopbackServer) -> Newsroom:
    room = Newsroom(loopback).attach()
    for i, title in enumerate(("Truce talks resume", "Budget passes", "Harbour reopens")):
        room.add(make_story(f"s{i}", title, seed=i))
    return room


def write_config(path: Path, room: Newsroom, hook: Webhook, database: str | None) -> Path:
    where = f'database: "{database}"' if database else f"state_dir: {path.parent / 'state'}"
    path.write_text(
        f"""
{where}
allow_private_networks: true
feeds:
  - {{name: rss, url: "{room.url("/rss.xml")}"}}
  - {{name: atom, url: "{room.url("/atom.xml")}"}}
notifiers:
  desk: "{hook.url}"
  down: "json://127.0.0.1:9/hook"   # refused: its deliveries wait to be retried
rules:
  - {{name: talks, keywords: [truce], notify: [desk, down]}}
  - {{name: edits, events: [changed], notify: [desk]}}
"""
    )
    return path


@pytest.fixture
def installation(tmp_path: Path, room: Newsroom, hook: Webhook) -> Path:
    """A SQLite installation with history: first versions, an edit, alerts sent and held."""
    config = write_config(tmp_path / "watcher.yaml", room, hook, None)
    assert "1 delivered, 1 to retry" in cli(config, "check").stdout  # `down` refused
    story = room.stories["s0"]
    room.edit("s0", paragraphs=[*story.paragraphs[:-1], "Both sides agreed to a truce."])
    assert "1 changed" in cli(config, "check", "--recheck-all").stdout
    return config


def seen_by_watcher(config: Path, room: Newsroom) -> dict[str, object]:
    """What a user sees of the installation."""
    status = json.loads(cli(config, "status", "--json").stdout)
    return {
        "alerts": json.loads(cli(config, "alerts", "--json").stdout),
        "history": [
            json.loads(cli(config, "history", "--json", room.url(s.path())).stdout)
            for s in room.stories.values()
        ],
        "feeds": status["feeds"],
        "outbox": status["outbox"],
    }


def migrate(config: Path, *args: str) -> tuple[int, str, str]:
    done = watcher(config, "migrate-to", *args)
    return done.code, done.stdout, done.stderr


def copied_counts(out: str) -> dict[str, tuple[int, int]]:
    return {t: (int(s), int(d)) for t, s, d in TABLE_LINE.findall(out)}


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_an_installation_moves_with_its_history(
    kind: str, installation: Path, room: Newsroom, hook: Webhook, tmp_path: Path
) -> None:
    before = seen_by_watcher(installation, room)
    with database_url(kind, tmp_path / "target") as url:
        code, out, err = migrate(installation, url, "--batch", "2")
        assert code == 0, err
        counts = copied_counts(out)
        assert sorted(counts) == sorted(t.name for t in tables()), out
        for table in ("feed", "article", "article_feed", "version", "alert", "delivery"):
            assert counts[table][0] > 0 and counts[table][0] == counts[table][1], table
        assert "copying version: " in err and "now set `database: " in out
        moved = write_config(tmp_path / "moved.yaml", room, hook, url)
        assert seen_by_watcher(moved, room) == before
        # It goes on: new rows take ids past the copied ones (PostgreSQL's sequences moved).
        room.add(make_story("s9", "Truce holds overnight", seed=9))
        summary = cli(moved, "check").stdout
        assert "articles: 1 new" in summary, summary
        newest = json.loads(cli(moved, "alerts", "--json").stdout)[-1]
        assert newest["id"] > max(a["id"] for a in before["alerts"])  # type: ignore[attr-defined]


def test_a_target_with_data_is_refused_unless_replace(installation: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'target.db'}"
    assert migrate(installation, url)[0] == 0
    code, out, err = migrate(installation, url)
    assert code == 1 and out == ""
    assert "already holds data (article 3, feed 2," in err and "--replace" in err
    code, out, err = migrate(installation, url, "--replace")
    assert code == 0, err
    assert copied_counts(out)["version"] == (4, 4)


def test_refused_while_the_daemon_holds_the_source(installation: Path, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'state' / 'watcher.db'}"
    target = tmp_path / "target.db"
    with instance_lock(source, "run"):
        code, _, err = migrate(installation, f"sqlite:///{target}")
    assert code == 1
    assert "in use by watcher run, pid" in err and "watcher.db.lock" in err
    assert not target.exists()  # nothing made: the source's lock comes first


def test_other_refusals(installation: Path, tmp_path: Path, room: Newsroom, hook: Webhook) -> None:
    code, _, err = migrate(installation, f"sqlite:///{tmp_path / 'state' / 'watcher.db'}")
    assert code == 2 and "the target is the config's own database" in err
    code, _, err = migrate(installation, "postgresql://watcher:s3cret@127.0.0.1:1/none")
    assert code == 1 and "127.0.0.1" in err and "s3cret" not in err
    nowhere = write_config(tmp_path / "none.yaml", room, hook, f"sqlite:///{tmp_path}/no.db")
    code, _, err = migrate(nowhere, f"sqlite:///{tmp_path / 'target.db'}")
    assert code == 1 and "no database file" in err
    assert not (tmp_path / "no.db").exists()


def test_help_names_the_flag_and_an_example(tmp_path: Path) -> None:
    out = cli(tmp_path / "absent.yaml", "migrate-to", "--help").stdout
    assert "--replace" in out and "watcher migrate-to postgresql://" in out
