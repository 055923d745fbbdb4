"""Apprise loads only the plugins the notifier URLs name, once it has learned where each
scheme's plugin lives; whatever the cache cannot answer takes the full load, and the
services built either way are the same.

apprise's plugin registry is one per process, so each case runs in a fresh interpreter
with its own cache directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# Builds the notifiers of a config made of the URLs given, as `watcher validate` does, and
# says what came of it: each service's full URL (or the refusal), the apprise plugin
# modules imported, and any error apprise logged while loading.
PROBE = """
import json, logging, sys
from watcher.config.loading import parse_config
from watcher.delivery.notifiers import build_notifiers
from watcher.delivery.plugins import load_plugins
from watcher.errors import ConfigError

errors = []
class Keep(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.ERROR:
            errors.append(record.getMessage())
logging.getLogger("apprise").addHandler(Keep())

result = {"services": {}, "refused": {}}
for step in json.loads(sys.argv[1]):
    if step is None:
        load_plugins(None)
        continue
    config = parse_config(json.dumps({"notifiers": step}))
    for name in step:
        try:
            notifier = build_notifiers(config, [name])[name]
        except ConfigError as error:
            result["refused"][name] = str(error)
        else:
            result["services"][name] = [t.label for t in notifier.targets]
result["plugin_modules"] = sorted(
    {m.split(".")[2] for m in sys.modules if m.startswith("apprise.plugins.") and m.count(".") >= 2}
)
result["errors"] = errors
print(json.dumps(result))
"""

URLS = {
    "mail": "mailtos://alerts:secret@smtp.example.org?to=desk@example.org",
    "chat": "matrix://bot:secret@matrix.example.org/#newsdesk",
    "hook": "json://127.0.0.1:9/hook",
    "screen": "console://",
}
# apprise knows this service by its own https address: there is no scheme to look up.
DISCORD = {"discord": "https://discord.com/api/webhooks/4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js"}


def probe(cache: Path, *steps: dict[str, str] | None) -> dict[str, Any]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(steps))],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def cache_file(cache: Path) -> Path:
    (found,) = (cache / "watcher").glob("apprise-*-schemes.json")
    return found


def test_a_learned_cache_loads_only_the_plugins_named_and_builds_the_same_services(
    cache: Path,
) -> None:
    first = probe(cache, URLS)
    assert len(first["plugin_modules"]) > 50  # nothing learned yet: apprise loads them all
    again = probe(cache, URLS)
    assert again["services"] == first["services"]
    assert set(again["services"]) == set(URLS)
    assert len(again["plugin_modules"]) < 10, again["plugin_modules"]
    assert {"email", "matrix", "custom_json"} <= set(again["plugin_modules"])
    assert again["errors"] == [] == first["errors"]


def test_a_refused_url_says_the_same_with_or_without_the_cache(cache: Path) -> None:
    bad = {"mail": "mailtos://", "odd": "nosuchservice://x", "web": "https://example.org/x"}
    cold = probe(cache, bad)
    probe(cache, URLS)
    warm = probe(cache, bad)
    assert set(cold["refused"]) == set(bad)
    assert warm["refused"] == cold["refused"]
    assert "apprise cannot use this URL" in warm["refused"]["mail"]


def test_a_url_apprise_knows_by_its_https_address_takes_the_full_load(cache: Path) -> None:
    probe(cache, URLS)
    result = probe(cache, DISCORD)
    assert result["services"]["discord"][0].startswith("discord://")
    assert len(result["plugin_modules"]) > 50


def test_a_process_that_loaded_a_few_plugins_can_still_load_them_all(cache: Path) -> None:
    probe(cache, URLS)
    later = {"mail": URLS["mail"], "again": URLS["hook"]}
    result = probe(cache, {"hook": URLS["hook"]}, None, DISCORD, later)
    assert set(result["services"]) == {"hook", "discord", "mail", "again"}
    assert result["services"]["again"] == result["services"]["hook"]
    assert result["errors"] == []  # no schema registered twice on the way


@pytest.mark.parametrize("damage", ["not json", '{"stamp": 1, "schemes": {"json": "x:Y"}}'])
def test_a_broken_or_stale_cache_is_relearned(cache: Path, damage: str) -> None:
    learned = probe(cache, URLS)
    cache_file(cache).write_text(damage)
    result = probe(cache, URLS)
    assert result["services"] == learned["services"]
    assert len(result["plugin_modules"]) > 50
    assert json.loads(cache_file(cache).read_text())["schemes"]["mailtos"].startswith(
        "apprise.plugins.email"
    )


def test_a_cache_that_points_at_a_vanished_plugin_takes_the_full_load(cache: Path) -> None:
    learned = probe(cache, URLS)
    data = json.loads(cache_file(cache).read_text())
    data["schemes"]["json"] = "apprise.plugins.custom_json:NoSuchClass"
    cache_file(cache).write_text(json.dumps(data))
    result = probe(cache, URLS)
    assert result["services"] == learned["services"]
    assert len(result["plugin_modules"]) > 50


def test_an_unwritable_cache_costs_speed_not_service(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # the cache directory would have to be inside a file
    result = probe(blocked, URLS)
    assert set(result["services"]) == set(URLS)
    assert probe(blocked, URLS)["services"] == result["services"]
