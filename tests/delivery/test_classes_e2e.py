"""Edit classes as a user meets them: in the message a webhook receives (subject and body),
in ``watcher alerts --json``, ``watcher history`` and ``watcher diff``, through an edit and
its revert on a loopback newsroom."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.newsroom import Newsroom, make_story
from support.processes import cli_stdout
from support.receivers import Webhook
from support.server import LoopbackServer

SENTENCE = "A ceasefire took effect at midnight, officials in Geneva said."


@pytest.fixture
def hook() -> Iterator[Webhook]:
    with Webhook() as receiver:
        yield receiver


def test_an_edit_and_its_revert_are_told_for_what_they_are(
    loopback: LoopbackServer, hook: Webhook, tmp_path: Path
) -> None:
    room = Newsroom(loopback).attach()
    story = room.add(make_story("truce", "Truce talks resume in Geneva", seed=1))
    config = tmp_path / "watcher.yaml"
    config.write_text(
        f"""
state_dir: state
allow_private_networks: true
defaults: {{recheck: [{{until: 7d, every: 1s}}]}}
feeds: [{{name: loop, url: "{room.url("/rss.xml")}"}}]
notifiers: {{desk: "{hook.url}"}}
rules: [{{name: ceasefire, keywords: [ceasefire], events: [changed], notify: [desk]}}]
"""
    )
    original = list(story.paragraphs)
    cli_stdout(config, "check")
    room.edit("truce", paragraphs=[*original, SENTENCE])
    cli_stdout(config, "check", "--recheck-all")
    room.edit("truce", paragraphs=original)  # taken out again: the page is version 1 again
    cli_stdout(config, "check", "--recheck-all")

    edit, revert = hook.received
    assert edit["title"].startswith("[watcher] ceasefire (substance): ")
    assert revert["title"].startswith("[watcher] ceasefire (revert, substance): ")
    assert "Edited article (revert, substance)" in revert["message"]
    assert "went back to version 1 after version 2 replaced it" in revert["message"]

    alerts = json.loads(cli_stdout(config, "alerts", "--json"))
    assert [a["classes"] for a in alerts] == [["substance"], ["revert", "substance"]]
    assert [a["version"] for a in alerts] == [2, 1]
    table = cli_stdout(config, "alerts")
    assert "revert, substance" in table.splitlines()[2]

    url = room.url("/news/truce.html")
    history = json.loads(cli_stdout(config, "history", url, "--json"))
    assert [(v["number"], v["classes"]) for v in history["versions"]] == [
        (1, []),
        (2, ["substance"]),
    ]
    assert "\tsubstance\t" in cli_stdout(config, "history", url)

    # The default diff is the change that is live: the rollback 2 → 1, not the edit 1 → 2.
    latest = json.loads(cli_stdout(config, "diff", url, "--json"))
    assert (latest["from"], latest["to"]) == (2, 1)
    assert any("ceasefire took effect" in text for text in latest["removed"])
    assert not latest["added"]
    assert "version 2 → 1" in cli_stdout(config, "diff", url)
    explicit = json.loads(cli_stdout(config, "diff", url, "--from", "1", "--to", "2", "--json"))
    assert (explicit["from"], explicit["to"]) == (1, 2)
    assert any("ceasefire took effect" in text for text in explicit["added"])
    only_to = json.loads(cli_stdout(config, "diff", url, "--to", "2", "--json"))
    assert (only_to["from"], only_to["to"]) == (1, 2)
