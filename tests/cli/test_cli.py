"""The ``watcher`` command as a user runs it, against a loopback newsroom."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from support.newsroom import Newsroom, make_story
from support.server import LoopbackServer
from watcher.cli.commands import main
from watcher.service.lock import instance_lock

COMMANDS = sorted(main.commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert len(result.output) > 80
    assert main.commands[command].help


@pytest.fixture
def site(loopback: LoopbackServer, tmp_path: Path) -> tuple[Newsroom, Path]:
    room = Newsroom(loopback).attach()
    room.add(make_story("truce", "Truce talks resume in Geneva", seed=1))
    room.add(make_story("budget", "Budget passes after long debate", seed=2))
    config = tmp_path / "watcher.yaml"
    config.write_text(
        f"""
state_dir: state
allow_private_networks: true
feeds:
  - {{name: loop, url: "{room.url("/rss.xml")}"}}
notifiers:
  desk: "json://127.0.0.1:9/hook?token=${{WATCHER_TEST_TOKEN}}"
rules:
  - {{name: talks, keywords: [truce], notify: [desk]}}
  - {{name: edits, events: [changed], notify: [desk]}}
"""
    )
    return room, config


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, ["-c", str(config), *args], env={"WATCHER_TEST_TOKEN": "s3cr3t-token"}
    )
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_check_alerts_history_diff(site: tuple[Newsroom, Path]) -> None:
    room, config = site
    code, out, _ = run(config, "check")
    assert code == 0
    assert "articles: 2 new, 0 changed" in out
    assert (config.parent / "state" / "watcher.db").exists()

    story = room.stories["truce"]
    room.edit("truce", paragraphs=[*story.paragraphs[:-1], "At least 12 people were killed."])
    code, out, _ = run(config, "check", "--recheck-all")
    assert "1 changed" in out and "alerts: 1" in out

    code, out, _ = run(config, "alerts", "--json")
    alerts = json.loads(out)
    assert [(a["rule"], a["event"]) for a in alerts] == [("talks", "new"), ("edits", "changed")]
    keys = {
        "id",
        "rule",
        "event",
        "feed",
        "url",
        "title",
        "version",
        "created_at",
        "matched",
        "added",
        "removed",
        "delivered",
    }
    assert all(keys <= set(a) for a in alerts)
    assert alerts[1]["version"] == 2 and alerts[1]["delivered"] is False
    assert any("12 people were killed" in text for text in alerts[1]["added"])

    url = room.url("/news/truce.html")
    code, out, _ = run(config, "history", url + "?utm_source=x")
    assert code == 0 and "truce" in out.lower()

    code, out, _ = run(config, "diff", url)
    assert code == 0
    assert "{+" in out and "12 people were killed" in out  # plain markers when piped

    code, out, _ = run(config, "alerts", "--since", "1h")
    assert "talks" in out

    code, out, _ = run(config, "feeds")
    assert "loop" in out


def test_secrets_never_printed(site: tuple[Newsroom, Path]) -> None:
    _, config = site
    commands = (["validate"], ["feeds"], ["alerts"], ["check"], ["status"], ["status", "--json"])
    for args in commands:
        _, out, err = run(config, *args)
        assert "s3cr3t-token" not in out + err


def test_bad_config_is_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "watcher.yaml"
    config.write_text("feeds:\n  - {name: a, url: 'http://a.example/f', interval: soon}\n")
    for command in ("validate", "check", "feeds", "alerts"):
        code, _, err = run(config, command)
        assert code == 2
        assert f"{config}:2: feeds[0].interval: bad duration 'soon'" in err
        assert "Traceback" not in err


def test_unknown_article_and_bad_options(site: tuple[Newsroom, Path]) -> None:
    _, config = site
    run(config, "check")
    code, _, err = run(config, "history", "http://nowhere.example/x")
    assert code != 0 and "no tracked article" in err
    code, _, err = run(config, "alerts", "--since", "yesterday")
    assert code != 0 and "bad duration" in err
    code, _, err = run(config, "check", "--feed", "nope")
    assert code == 2 and "no feed named 'nope'" in err


def test_status_after_a_check_needs_no_lock(site: tuple[Newsroom, Path]) -> None:
    room, config = site
    assert run(config, "check")[0] == 0
    # The same database, one more feed that was never polled.
    grown = config.with_name("grown.yaml")
    extra = f'  - {{name: later, url: "{room.url("/atom.xml")}"}}\n'
    grown.write_text(config.read_text().replace("feeds:\n", "feeds:\n" + extra))
    database = f"sqlite:///{config.parent / 'state' / 'watcher.db'}"
    with instance_lock(database, "run"):  # as if `watcher run` held the database
        code, out, _ = run(grown, "status", "--json")
        assert code == 0
        code, table, _ = run(grown, "status")
        assert code == 0
    status = json.loads(out)
    feeds = {feed["feed"]: feed for feed in status["feeds"]}
    assert list(feeds) == ["later", "loop"]  # the config's order
    loop = feeds["loop"]
    assert (loop["last_status"], loop["error_streak"], loop["last_error"]) == (200, 0, None)
    assert (loop["tracking"], loop["retired"], loop["versions"], loop["alerts"]) == (2, 0, 2, 1)
    assert loop["last_poll"] <= loop["next_poll"]
    never = feeds["later"]
    assert never["last_poll"] is None and never["tracking"] == never["alerts"] == 0
    assert status["outbox"] == {"new": 0, "retrying": 1}  # the hook at port 9 is down
    assert "loop" in table and "later" in table
    assert "outbox: 1 retrying" in table


def test_an_internal_error_is_one_masked_line(
    site: tuple[Newsroom, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug is reported in one line (the traceback only with -vv), secrets masked in both."""
    _, config = site

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("could not reach json://127.0.0.1:9/hook?token=s3cr3t-token")

    monkeypatch.setattr("watcher.tasks.run_pass", broken)  # imported when `check` runs
    code, _, err = run(config, "check")
    assert code == 1
    assert err.strip().splitlines() == [
        "watcher: error: internal error: RuntimeError: could not reach "
        "json://127.0.0.1:9/hook?token=*** (run with -vv for details)"
    ]
    code, _, err = run(config, "-vv", "check")
    assert code == 1 and "Traceback" in err and "RuntimeError" in err
    assert "s3cr3t-token" not in err


def test_literal_notifier_secrets_are_masked_too(tmp_path: Path) -> None:
    config = tmp_path / "watcher.yaml"
    config.write_text(
        'notifiers: {desk: "json://127.0.0.1:9/hook?apikey=literal-key-123"}\n'
        "database: sqlite:////nonexistent-dir/x/literal-key-123.db\n"
    )
    code, out, err = run(config, "validate")
    assert code == 0
    assert "literal-key-123" not in out + err
    assert "***" in out + err
