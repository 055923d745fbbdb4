"""The take-down judgement's pure parts: front pages, moves, gone answers, and when the
gone answers make an article removed (case table: tests/data/takedown_cases.yaml)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from support.paths import DATA
from watcher.config.models import RuleConfig
from watcher.errors import FetchError
from watcher.pipeline.fetch import FetchResult, Redirect, StatusError
from watcher.pipeline.rules import compile_rules
from watcher.pipeline.takedown import (
    FrontPageRedirect,
    gone_answer,
    is_front_page,
    moved_to,
    removal,
    restoration,
)
from watcher.records import ArticleState

CASES: dict[str, list[dict[str, Any]]] = yaml.safe_load((DATA / "takedown_cases.yaml").read_text())


@pytest.mark.parametrize("case", CASES["front_page"], ids=lambda c: c["url"])
def test_front_page(case: dict[str, Any]) -> None:
    assert is_front_page(case["url"], case.get("feeds", ())) is case["front"]


@pytest.mark.parametrize("case", CASES["moves"], ids=lambda c: c["id"])
def test_moves(case: dict[str, Any]) -> None:
    redirects = tuple(Redirect(status, url) for status, url in case["redirects"])
    final = redirects[-1].url if redirects else case["link"]
    result = FetchResult(case["link"], final, 200, b"", {}, None, None, redirects=redirects)
    assert moved_to(case["link"], result) == case["moved"]


def test_gone_answers() -> None:
    url = "https://news.example.org/a"
    assert gone_answer(StatusError(url, "Not Found", status=404)).status == 404  # type: ignore[union-attr]
    assert gone_answer(StatusError(url, "Gone", status=410)) is not None
    assert gone_answer(FrontPageRedirect(url, "https://news.example.org/")) is not None
    for other in (StatusError(url, "Unavailable", status=503), FetchError(url, "timed out")):
        assert gone_answer(other) is None


def _article(**changes: Any) -> ArticleState:
    base = dict(
        id=1, url="https://news.example.org/a", guid=None, link=None, host="news.example.org",
        entry_title="t", entry_content="", first_seen=datetime(2026, 12, 1, tzinfo=UTC),
        last_checked=None, next_check_at=None, checks=3, failures=0, status="tracking",
        etag=None, last_modified=None, current_version=1, feeds=("news",),
    )  # fmt: skip
    return ArticleState(**{**base, **changes})


def test_the_second_gone_answer_removes_and_rules_judge_the_text() -> None:
    rules = compile_rules(
        [
            RuleConfig(name="gone", events=["removed"]),
            RuleConfig(name="truce", keywords=["truce"], events=["removed", "restored"]),
            RuleConfig(name="edits", events=["changed"]),
        ]
    )
    gone = gone_answer(StatusError("https://news.example.org/a", "Not Found", status=404))
    assert gone is not None
    page = ("Truce holds", "Truce holds\nThe truce held overnight.")
    assert removal(_article(), gone, page, rules, frozenset()) is None  # the first one
    event = removal(_article(gone_checks=1), gone, page, rules, frozenset())
    assert event is not None and event.kind == "removed" and event.status == 404
    assert [a.rule for a in event.alerts] == ["gone", "truce"]
    assert event.alerts[1].detail["removed"] == ["Truce holds The truce held overnight."]
    removed_at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert (
        removal(_article(gone_checks=5, removed_at=removed_at), gone, page, rules, frozenset())
        is None
    )
    back = restoration(_article(removed_at=removed_at), page, rules, frozenset())
    assert back is not None and [a.rule for a in back.alerts] == ["truce"]
    assert restoration(_article(), page, rules, frozenset()) is None
