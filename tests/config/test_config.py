from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from support.paths import ROOT
from watcher.config.loading import load_config, parse_config
from watcher.config.models import DEFAULT_RECHECK
from watcher.config.values import parse_duration
from watcher.errors import ConfigError

CASES: list[dict[str, Any]] = yaml.safe_load((ROOT / "tests/data/config_errors.yaml").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_config_names_line_key_and_problem(case: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(case["text"], "watcher.yaml")
    error = caught.value
    assert error.line == case["line"], str(error)
    assert error.key == case["key"], str(error)
    assert case["says"] in str(error)
    assert str(error).startswith(f"watcher.yaml:{case['line']}: ")


def test_example_config_loads() -> None:
    config = load_config(ROOT / "config" / "watcher.example.yaml")
    assert {f.name for f in config.feeds} >= {"wt-world"}
    assert config.rules[0].keywords


def test_defaults_and_per_feed_settings() -> None:
    config = parse_config(
        """
        defaults: {interval: 20m, fetch_article: false, track_for: 2d}
        feeds:
          - {name: a, url: "http://a.example/f"}
          - {name: b, url: "http://b.example/f", interval: 1m, fetch_article: true,
             recheck: [{until: 1h, every: 5m}]}
        """
    )
    a, b = (config.settings_for(f) for f in config.feeds)
    assert a.interval == timedelta(minutes=20) and not a.fetch_article
    assert a.track_for == timedelta(days=2)
    assert [s.until for s in a.recheck] == [
        timedelta(hours=3),
        timedelta(days=1),
        timedelta(days=2),
    ]
    assert b.interval == timedelta(minutes=1) and b.fetch_article
    assert b.track_for == timedelta(hours=1)


def test_default_recheck_schedule_is_the_documented_one() -> None:
    config = parse_config("feeds: []")
    assert tuple(config.defaults.recheck) == DEFAULT_RECHECK
    assert DEFAULT_RECHECK[-1].until == timedelta(days=7)


def test_env_expansion_records_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHER_TEST_PW", "hunter2")
    config = parse_config(
        'notifiers: {desk: "mailtos://u:${WATCHER_TEST_PW}@m.example"}\n'
        'database: "sqlite:///$${HOME}/x.db"'
    )
    assert config.notifiers["desk"].urls == ["mailtos://u:hunter2@m.example"]
    assert config.database == "sqlite:///${HOME}/x.db"
    assert "hunter2" in config.secrets


def test_yaml_booleans_are_only_true_false() -> None:
    config = parse_config("feeds:\n  - {name: yes, url: 'http://a.example/f', tags: [on, no]}")
    assert config.feeds[0].name == "yes"
    assert config.feeds[0].tags == ["on", "no"]


def test_missing_file_says_how_to_give_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="-c/--config"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("15m", 900),
        ("2h", 7200),
        ("7d", 604800),
        ("1h30m", 5400),
        ("1w", 604800),
        ("500ms", 0.5),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "15", "15 minutes", "m", "1x", "-5m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_a_config_or_a_config_error(text: str) -> None:
    try:
        parse_config(text, "fuzz.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.yaml")


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12))
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["feeds", "rules", "defaults", "notifiers", "fetch", "database", "x"]),
        _values,
        max_size=4,
    )
)
def test_any_yaml_structure_gives_a_config_or_a_config_error(data: dict[str, Any]) -> None:
    try:
        parse_config(yaml.safe_dump(data), "fuzz.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.yaml")
