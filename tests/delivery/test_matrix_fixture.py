"""The Synapse test server: an alert sent with apprise's matrix:// plugin arrives in the room.

Skipped unless ``WATCHER_TEST_SYNAPSE_PYTHON`` names a python with Synapse (``.ci/synapse``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import apprise

from support.synapse import SynapseServer, synapse_server
from watcher.delivery.plugins import load_plugins


def _wait_for_message(matrix: SynapseServer, needle: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        for content in matrix.messages():
            if needle in str(content.get("body", "")):
                return content
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no message containing {needle!r} in the room after {timeout:.0f}s; "
                f"room has {matrix.messages()!r}"
            )
        time.sleep(0.2)


def test_apprise_markdown_alert_reaches_the_room(tmp_path: Path) -> None:
    with synapse_server(tmp_path / "synapse") as matrix:
        assert matrix.messages() == []
        load_plugins([matrix.apprise_url])  # as every use of apprise in watcher does first
        notifier = apprise.Apprise()
        assert notifier.add(matrix.apprise_url), matrix.apprise_url

        sent = notifier.notify(
            title="Cease-fire in Gaza: story edited",
            body="The **headline** changed.\n\n- before: truce\n- after: cease-fire",
            body_format=apprise.NotifyFormat.MARKDOWN,
        )
        problems = "\n".join(entry.message for entry in sent.logs())
        assert sent, f"apprise failed: {problems}\nserver log tail:\n{matrix.log_tail()}"

        content = _wait_for_message(matrix, "headline")
        assert content["msgtype"] == "m.text"
        assert "Cease-fire in Gaza: story edited" in content["body"]
        assert "before: truce" in content["body"]
        assert content["format"] == "org.matrix.custom.html"
        assert "<h1>Cease-fire in Gaza: story edited</h1>" in content["formatted_body"]
        assert "<strong>headline</strong>" in content["formatted_body"]
        assert "<li>after: cease-fire</li>" in content["formatted_body"]
