from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from support.paths import ROOT
from watcher.config.models import RuleConfig
from watcher.pipeline.classes import classify
from watcher.pipeline.diff import compute_change, document
from watcher.pipeline.rules import Condition, Rule, Subject, documentation, keyword_pattern

CASES: list[dict[str, Any]] = yaml.safe_load((ROOT / "tests/data/rules_cases.yaml").read_text())


def _subject(case: dict[str, Any]) -> Subject:
    feeds = tuple(case.get("feeds", ["wt-world"]))
    tags = frozenset(case.get("tags", ["syria"]))
    new = case["new"]
    if "old" not in case:
        return Subject("new", feeds, tags, document(new["title"], new["text"]))
    old = case["old"]
    change = compute_change(old["title"], old["text"], new["title"], new["text"])
    text = document(new["title"], new["text"])
    return Subject("changed", feeds, tags, text, change, classify(change))


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_rule_cases(case: dict[str, Any]) -> None:
    rule = Rule.from_config(RuleConfig.model_validate(case["rule"]))
    match = rule.evaluate(_subject(case))
    if case["matched"] is None:
        assert match is None
    else:
        assert match is not None
        assert list(match.matched) == case["matched"]


def test_reasons_say_added_or_removed() -> None:
    rule = Rule.from_config(RuleConfig(name="r", keywords=["truce"]))
    change = compute_change("T", "They met.", "T", "They met and agreed a truce.")
    match = rule.evaluate(Subject("changed", ("f",), frozenset(), "", change))
    assert match is not None and "'truce' added" in match.reasons[0]


def test_keyword_split_needs_long_parts() -> None:
    assert keyword_pattern("air strike").search("an airstrike")
    assert keyword_pattern("airstrike").search("an air-strike")
    assert keyword_pattern("ceasefire").search("a cease fire")
    assert not keyword_pattern("therapist").search("the rapist")


_KEYWORD_TEXT = st.text(
    st.sampled_from([*"aeGgKkſ-–  ,.#1_ß", "\u212a", "\u0130", "\n"]), max_size=30
)


@given(st.text(st.sampled_from(list("agGkKſß-–# .1")), min_size=1, max_size=8), _KEYWORD_TEXT)
def test_a_keyword_matches_where_it_would_without_its_first_letter_lookahead(
    phrase: str, text: str
) -> None:
    # The lookahead only lets re skip ahead: every match starts with that letter anyway,
    # under IGNORECASE's Unicode folds too (Kelvin sign, long s, dotted I).
    pattern = keyword_pattern(phrase)
    without = re.compile(re.sub(r"^\(\?=(?:\\.|[^)])\)", "", pattern.pattern), pattern.flags)
    assert without.pattern != pattern.pattern or not phrase.strip(" -–")
    assert [m.span() for m in pattern.finditer(text)] == [m.span() for m in without.finditer(text)]


def test_duplicate_condition_kind_is_an_error() -> None:
    with pytest.raises(TypeError, match="registered twice"):

        class Again(Condition, kind="keywords"):
            pass


def test_every_condition_kind_is_documented() -> None:
    docs = dict(documentation())
    assert {"keywords", "regex", "scope", "min_change"} <= set(docs)
    assert all(len(text) > 40 for text in docs.values())
