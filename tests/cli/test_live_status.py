"""``watcher status`` and ``watcher feeds`` (tables and --json) show a live page while it
keeps changing, and not once it has calmed down."""

from __future__ import annotations

import json
from pathlib import Path

from support.newsroom import Newsroom, make_story
from support.processes import cli_stdout
from support.server import LoopbackServer


def test_status_and_feeds_show_a_live_page_until_it_calms_down(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    room = Newsroom(loopback).attach()
    story = room.add(make_story("results", "Election night live", seed=3))
    room.add(make_story("museum", "Museum reopens", seed=4))
    config = tmp_path / "watcher.yaml"
    config.write_text(
        f"""
state_dir: state
allow_private_networks: true
defaults: {{recheck: [{{until: 7d, every: 1s}}]}}
feeds: [{{name: loop, url: "{room.url("/rss.xml")}"}}]
live_pages: {{changes: 2, checks: 3}}
"""
    )
    cli_stdout(config, "check")
    for n in (1, 2):
        update = f"Update {n}: station {n} has counted."
        room.edit("results", paragraphs=[update, *story.paragraphs])
        cli_stdout(config, "check", "--recheck-all")
    url = room.url("/news/results.html")
    status = json.loads(cli_stdout(config, "status", "--json"))
    assert [(p["url"], p["changes"], p["checks"]) for p in status["live_pages"]] == [(url, 2, 2)]
    assert status["feeds"][0]["live"] == 1
    assert json.loads(cli_stdout(config, "feeds", "--json"))[0]["live"] == 1
    table = cli_stdout(config, "status")
    assert "live pages (1; changed on 2+ of their last 3 checks" in table
    assert f"  {url}\t2 of 2 checks changed" in table

    cli_stdout(config, "check", "--recheck-all")
    assert json.loads(cli_stdout(config, "status", "--json"))["live_pages"]  # 2 of the last 3
    cli_stdout(config, "check", "--recheck-all")
    status = json.loads(cli_stdout(config, "status", "--json"))
    assert status["live_pages"] == [] and status["feeds"][0]["live"] == 0
    assert "live pages" not in cli_stdout(config, "status")
