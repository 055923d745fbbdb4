"""The live-page rule: changed on at least N of the last M checks; only edits are marked."""

from __future__ import annotations

import pytest

from watcher.config.live import MAX_CHECKS, LivePagesSettings
from watcher.pipeline.livepages import is_live, live_fact, mark_live, with_outcome
from watcher.records import NewAlert

RULE = LivePagesSettings(changes=3, checks=4)


@pytest.mark.parametrize(
    ("recent", "live"),
    [
        ("", False),
        ("cc", False),
        ("ccc", True),  # three changes in the first three re-checks
        ("c-cc", True),
        ("cc-c-", False),  # of the last four, two changed
        ("ccccc--", False),  # calmed down
        ("-" * 20 + "ccc", True),
    ],
)
def test_changed_on_n_of_the_last_m_checks(recent: str, live: bool) -> None:
    assert is_live(recent, RULE) is live


def test_outcomes_are_capped_and_a_disabled_rule_is_never_live() -> None:
    recent = ""
    for _ in range(MAX_CHECKS + 5):
        recent = with_outcome(recent, True)
    assert len(recent) == MAX_CHECKS
    assert live_fact(recent, RULE) == {"changes": 4, "checks": 4}
    assert not is_live(recent, LivePagesSettings(enabled=False))


def test_only_edit_alerts_are_marked_live() -> None:
    edit = NewAlert("edits", "changed", "f", (), {"classes": ["wording"]})
    new = NewAlert("all", "new", "f", (), {})
    marked = mark_live([edit, new], "cc", RULE)
    assert marked[0].detail["live"] == {"changes": 3, "checks": 3}
    assert "live" not in marked[1].detail
    assert mark_live([new], "cc", RULE) == (new,)
    assert "live" not in mark_live([edit], "c", RULE)[0].detail
