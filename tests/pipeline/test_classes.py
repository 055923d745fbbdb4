"""Edit classes from the case table (tests/data/classes_cases.yaml): typo, wording,
substance, headline, correction."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from support.paths import ROOT
from watcher.pipeline.classes import CLASSES, classify
from watcher.pipeline.diff import compute_change

CASES: list[dict[str, Any]] = yaml.safe_load(
    (ROOT / "tests/data/classes_cases.yaml").read_text()
)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_class_cases(case: dict[str, Any]) -> None:
    old, new = case["old"], case["new"]
    change = compute_change(old["title"], old["text"], new["title"], new["text"])
    assert list(classify(change)) == case["classes"]


def test_the_table_covers_every_class_classify_sets() -> None:
    seen = {name for case in CASES for name in case["classes"]}
    # revert and flip-flop are set by the judge, not by classify (tests/tasks/test_spine.py).
    assert seen == set(CLASSES) - {"revert", "flip-flop"}
