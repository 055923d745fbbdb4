"""The command line a reporter lives in: exit codes, output for pipes, the commands people
reach for (articles, show, why, outbox drop), muting, and one clear error form."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from support.newsroom import Newsroom, make_story
from support.server import LoopbackServer
from watcher.cli.commands import main

DOWN = "http://127.0.0.1:9/down.xml"  # nothing listens on port 9: every poll fails


def write_config(tmp_path: Path, room: Newsroom, *, extra_feeds: str = "", rules: str = "") -> Path:
    config = tmp_path / "watcher.yaml"
    config.write_text(
        f"""
state_dir: state
allow_private_networks: true
feeds:
  - {{name: loop, url: "{room.url("/rss.xml")}"}}
{extra_feeds}
notifiers:
  desk: "json://127.0.0.1:9/hook"
rules:
  - {{name: ceasefire-watch, keywords: [truce], notify: [desk]}}
  - {{name: edits, events: [changed], notify: [desk]}}
{rules}
"""
    )
    return config


@pytest.fixture
def room(loopback: LoopbackServer) -> Newsroom:
    newsroom = Newsroom(loopback).attach()
    newsroom.add(make_story("truce", "Truce holds in border town", seed=1))
    newsroom.add(make_story("budget", "Budget passes after long debate", seed=2))
    return newsroom


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


# ------------------------------------------------------------------------- exit codes


def test_check_exits_1_naming_failed_feeds_and_then_says_they_back_off(
    room: Newsroom, tmp_path: Path
) -> None:
    config = write_config(tmp_path, room, extra_feeds=f'  - {{name: broken, url: "{DOWN}"}}')
    code, out, err = run("check", "-c", str(config))
    assert code == 1
    assert "feeds polled: 2 (0 not modified, 1 failed)" in out
    assert "feed broken:" in err
    # The next run: the failing feed is backing off, and the summary says so (still exit 1).
    code, out, err = run("check", "-c", str(config))
    assert code == 1
    assert "feeds polled: 1 (" in out and ", 1 skipped: backing off)" in out
    assert "feed broken: backing off until" in err and "--force" in err
    # --force polls it anyway.
    code, out, _ = run("check", "-c", str(config), "--force")
    assert code == 1 and "feeds polled: 2" in out and "skipped" not in out


def test_check_all_well_exits_0_and_unknown_feed_is_a_usage_error(
    room: Newsroom, tmp_path: Path
) -> None:
    config = write_config(tmp_path, room)
    code, out, _ = run("check", "-c", str(config))
    assert code == 0 and "feeds polled: 1 (0 not modified, 0 failed)" in out
    code, out, err = run("check", "-c", str(config), "--feed", "nope")
    assert code == 2 and out == ""
    assert err.startswith("watcher: error: ") and "no feed named 'nope'" in err
    assert "known: loop" in err


def test_errors_share_one_prefix(tmp_path: Path) -> None:
    config = tmp_path / "watcher.yaml"
    config.write_text("feeds:\n  - {name: a, url: 'http://a.example/f', interval: soon}\n")
    for args in (["validate"], ["alerts", "--since", "yesterday"], ["check", "--nope"]):
        code, _, err = run("-c", str(config), *args)
        assert code == 2, args
        assert err.startswith("watcher: error: "), err
        assert "Usage:" not in err and "Traceback" not in err


def test_help_documents_exit_codes() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for line in ("0    all well", "1    some feeds or checks failed", "2    a config or usage"):
        assert line in out
    assert "130  interrupted" in out


def test_global_options_work_after_the_command(room: Newsroom, tmp_path: Path) -> None:
    config = write_config(tmp_path, room)
    code, out, err = run("check", "-c", str(config), "-v")
    assert code == 0 and "articles: 2 new" in out
    assert "INFO" in err  # -v after the command raised the log level
    assert run("validate", "--config", str(config))[0] == 0


# --------------------------------------------------------------------- output for pipes


def test_piped_tables_are_tab_separated_and_never_cut(room: Newsroom, tmp_path: Path) -> None:
    long_rule = "ceasefire-watch-for-the-northern-border-region-desk"
    config = write_config(
        tmp_path, room, rules=f"  - {{name: {long_rule}, keywords: [truce], notify: [desk]}}"
    )
    run("check", "-c", str(config))
    code, out, _ = run("alerts", "-c", str(config))
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split("\t")[:6] == ["id", "when (UTC)", "rule", "event", "feed", "url"]
    mine = [row.split("\t") for row in rows if long_rule in row]
    assert len(mine) == 1  # `watcher alerts | grep RULE` finds it, whole
    assert mine[0][5] == room.url("/news/truce.html")
    assert "…" not in out


def test_json_on_every_listing_command(room: Newsroom, tmp_path: Path) -> None:
    config = write_config(tmp_path, room)
    run("check", "-c", str(config))
    url = room.url("/news/truce.html")
    story = room.stories["truce"]
    room.edit("truce", paragraphs=[*story.paragraphs, "At least 12 people were killed."])
    run("check", "-c", str(config), "--recheck-all")
    feeds = json.loads(run("feeds", "-c", str(config), "--json")[1])
    assert feeds[0]["feed"] == "loop" and feeds[0]["articles"] == 2 and feeds[0]["enabled"]
    articles = json.loads(run("articles", "-c", str(config), "--json")[1])
    assert {a["url"] for a in articles} == {url, room.url("/news/budget.html")}
    assert articles[-1]["url"] == url and articles[-1]["versions"] == 2  # changed last
    history = json.loads(run("history", "-c", str(config), url, "--json")[1])
    assert [v["number"] for v in history["versions"]] == [1, 2]
    assert history["versions"][1]["current"] is True
    diff = json.loads(run("diff", "-c", str(config), url, "--json")[1])
    assert (diff["from"], diff["to"]) == (1, 2)
    assert any("12 people were killed" in text for text in diff["added"])
    alerts = json.loads(run("alerts", "-c", str(config), "--json", "--rule", "edits")[1])
    assert [a["rule"] for a in alerts] == ["edits"]
    status = json.loads(run("status", "-c", str(config), "--json")[1])
    assert status["feeds"][0]["versions"] == 3


# ------------------------------------------------------------------------ new commands


def test_articles_search_and_filters(room: Newsroom, tmp_path: Path) -> None:
    config = write_config(tmp_path, room)
    run("check", "-c", str(config))
    code, out, _ = run("articles", "-c", str(config), "--search", "BUDGET")
    assert code == 0
    assert room.url("/news/budget.html") in out and "truce" not in out
    assert run("articles", "-c", str(config), "--feed", "loop")[1].count("\n") == 3
    assert run("articles", "-c", str(config), "--changed-since", "1h")[1].count("\n") == 3
    code, out, err = run("articles", "-c", str(config), "--search", "no such words")
    assert code == 0 and out.splitlines() == [out.splitlines()[0]] and "no articles" in err


def test_show_prints_one_versions_text(room: Newsroom, tmp_path: Path) -> None:
    config = write_config(tmp_path, room)
    run("check", "-c", str(config))
    url = room.url("/news/truce.html")
    story = room.stories["truce"]
    room.edit("truce", paragraphs=[*story.paragraphs, "A paragraph of the second version."])
    run("check", "-c", str(config), "--recheck-all")
    code, out, _ = run("show", "-c", str(config), url, "--version", "1")
    assert code == 0 and out.startswith("Truce holds in border town")
    assert "second version" not in out
    code, out, _ = run("show", "-c", str(config), url)
    assert "second version" in out
    code, _, err = run("show", "-c", str(config), url, "--version", "9")
    assert code == 2 and "no version 9; stored: 1, 2" in err and "--version" in err


def test_why_says_which_rules_matched_and_why_not(room: Newsroom, tmp_path: Path) -> None:
    config = write_config(
        tmp_path, room, rules="  - {name: muted-one, keywords: [budget], enabled: false}"
    )
    run("check", "-c", str(config))
    code, out, _ = run("why", "-c", str(config), room.url("/news/budget.html"))
    assert code == 0
    assert "no alert recorded for it" in out
    assert "ceasefire-watch: no — keywords truce: not found in the article" in out
    assert "edits: no — fires on changed, this is new" in out
    assert "muted-one: muted (enabled: false)" in out
    code, out, _ = run("why", "-c", str(config), room.url("/news/truce.html"))
    assert "ceasefire-watch: MATCHES ('truce' in the article)" in out
    assert "rule ceasefire-watch, new, version 1" in out


def test_diff_of_the_first_version_blames_no_wrong_option(room: Newsroom, tmp_path: Path) -> None:
    config = write_config(tmp_path, room)
    run("check", "-c", str(config))
    code, _, err = run("diff", "-c", str(config), room.url("/news/truce.html"), "--to", "1")
    assert code == 2 and "--from" not in err
    assert "only one version is stored: nothing before it" in err


def test_muted_feed_is_not_polled_and_muted_rule_records_nothing(
    room: Newsroom, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        room,
        extra_feeds=f'  - {{name: broken, url: "{DOWN}", enabled: false}}',
        rules="  - {name: budget-watch, keywords: [budget], enabled: false}",
    )
    code, out, _ = run("check", "-c", str(config))
    assert code == 0 and "feeds polled: 1 " in out  # the muted, broken one was not polled
    alerts = json.loads(run("alerts", "-c", str(config), "--json")[1])
    assert {a["rule"] for a in alerts} == {"ceasefire-watch"}
    _, out, _ = run("validate", "-c", str(config))
    assert "1 feed, 2 rules, 1 notifier (2 muted)" in out
    feeds = json.loads(run("feeds", "-c", str(config), "--json")[1])
    assert {(f["feed"], f["enabled"]) for f in feeds} == {("broken", False), ("loop", True)}


def test_outbox_drop_gives_up_on_a_removed_notifier(room: Newsroom, tmp_path: Path) -> None:
    config = write_config(tmp_path, room)
    config.write_text(config.read_text() + "delivery: {retry: {first: 1s, max: 1s}}\n")
    run("check", "-c", str(config))  # the hook at port 9 is down: the alert waits for desk
    time.sleep(1.5)  # its retry is due
    # desk leaves the config; its delivery stays, and the summary says what to do.
    text = config.read_text().replace('desk: "json://127.0.0.1:9/hook"', 'screen: "console://"')
    config.write_text(text.replace("notify: [desk]", "notify: [screen]"))
    code, out, err = run("check", "-c", str(config))
    assert "no longer in the config" in out
    assert "watcher outbox drop --notifier desk" in err
    _, out, _ = run("outbox", "-c", str(config))
    assert "desk" in out and "not in the config" in out
    code, out, _ = run("outbox", "drop", "--notifier", "desk", "-c", str(config))
    assert code == 0 and "1 delivery to desk dropped" in out
    alerts = json.loads(run("alerts", "-c", str(config), "--json", "--undelivered")[1])
    assert [d["state"] for d in alerts[0]["deliveries"]] == ["gave_up"]
    code, out, _ = run("outbox", "-c", str(config))
    assert "nothing waits" in out + run("outbox", "-c", str(config))[2]


def test_links_refused_by_the_guard_are_counted_in_the_summary(
    room: Newsroom, tmp_path: Path
) -> None:
    config = write_config(tmp_path, room)
    config.write_text(config.read_text().replace("allow_private_networks: true\n", ""))
    code, out, _ = run("check", "-c", str(config))
    assert code == 0
    assert (
        "2 articles from feed text: links refused by the private-network guard, see -v" in out
    )


# --------------------------------------------------------------------- validate, logs


def test_validate_warns_about_likely_mistakes(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("state_dir: state\n")
    code, out, err = run("validate", "-c", str(empty))
    assert code == 0 and "0 feeds, 0 rules, 0 notifiers" in out
    assert "warning:" in err and "no feeds configured" in err
    busy = tmp_path / "busy.yaml"
    busy.write_text(
        "feeds:\n"
        "  - {name: theirs, url: 'https://news.example.org/rss', interval: 1s}\n"
        "  - {name: mine, url: 'http://127.0.0.1:8080/rss', interval: 1s}\n"
        "rules:\n  - {name: anything, events: [new]}\n"
    )
    code, _, err = run("validate", "-c", str(busy))
    assert code == 0
    assert "feed theirs: polled every 1 s on news.example.org" in err
    assert "feed mine" not in err
    assert "rule anything: no condition" in err


def test_log_lines_carry_the_time_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from watcher.cli import app

    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    assert app.log_format().startswith("%(asctime)s ")
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    assert "asctime" not in app.log_format()
    record = logging.LogRecord("watcher.x", logging.INFO, __file__, 1, "hello", None, None)
    assert app.MaskingFormatter(str).format(record) == "INFO watcher.x: hello"
