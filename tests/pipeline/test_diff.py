"""watcher.pipeline.diff: the case table in data/diff_cases.yaml, and the laws every diff obeys."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from support.paths import DATA
from watcher.pipeline import diff
from watcher.pipeline.diff import (
    Change,
    Hunk,
    Op,
    body_after_title,
    compute_change,
    document,
    hunks,
    word_diff,
)

CASES: list[dict[str, Any]] = yaml.safe_load(
    (DATA / "diff_cases.yaml").read_text(encoding="utf-8")
)
LISTED = ("added", "removed", "numbers_removed", "numbers_added", "quotes_removed", "quotes_added")
COUNTED = ("words_added", "words_removed")

# Texts that share words, so that diffs have equalities worth aligning, next to arbitrary
# Unicode (astral characters included) where they mostly do not.
PIECES = ["the", "army", "12", "1,200", "-5", "don't", "COVID-19", "🔥", "𝔸"]
PIECES += [" ", " ", " ", "\n", ".", ",", '"', "'", "«", "»"]
wordy = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
texts = st.one_of(wordy, st.text(max_size=60))


@pytest.fixture(scope="module", params=["compiled", "pure"])
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run with fast-diff-match-patch and with the pure-Python fallback."""
    saved = diff._fast_diff
    if request.param == "compiled" and saved is None:
        pytest.skip("fast-diff-match-patch is not installed")
    if request.param == "pure":
        diff._fast_diff = None
    yield request.param
    diff._fast_diff = saved


def old_text(ops: list[Op] | tuple[Op, ...]) -> str:
    return "".join(text for op, text in ops if op <= 0)


def new_text(ops: list[Op] | tuple[Op, ...]) -> str:
    return "".join(text for op, text in ops if op >= 0)


def assert_well_formed(ops: list[Op], old: str, new: str) -> None:
    assert old_text(ops) == old
    assert new_text(ops) == new
    assert all(op in (-1, 0, 1) and text for op, text in ops), "no empty or unknown ops"
    assert all(a[0] != b[0] for a, b in pairwise(ops)), "neighbours merged"


# --- the case table ----------------------------------------------------------------------------


def test_case_ids_are_unique() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case(case: dict[str, Any], engine: str) -> None:
    old, new, expect = case["old"], case["new"], case["expect"]
    change = compute_change(old["title"], old["text"], new["title"], new["text"])
    fields = [*LISTED, "headline_changed", *(field for field in COUNTED if field in expect)]
    actual = {field: getattr(change, field) for field in fields}
    expected = {field: tuple(expect.get(field, ())) for field in LISTED}
    expected["headline_changed"] = expect.get("headline_changed", False)
    expected.update({field: expect[field] for field in COUNTED if field in expect})
    assert actual == expected


# --- laws of word_diff -------------------------------------------------------------------------


@given(old=texts, new=texts)
def test_word_diff_rebuilds_both_texts(engine: str, old: str, new: str) -> None:
    assert_well_formed(word_diff(old, new), old, new)


@given(old=texts, new=texts)
def test_edits_cover_whole_tokens(old: str, new: str) -> None:
    def cuts(text: str) -> set[int]:
        return {0} | {match.end() for match in re.finditer(diff._TOKEN, text)}

    old_at = new_at = 0
    for op, text in word_diff(old, new):
        old_at += len(text) if op <= 0 else 0
        new_at += len(text) if op >= 0 else 0
        assert old_at in cuts(old) and new_at in cuts(new)


@settings(max_examples=300)
@given(old=texts, new=texts, capacity=st.integers(min_value=2, max_value=12))
def test_word_diff_survives_running_out_of_codes(old: str, new: str, capacity: int) -> None:
    assert_well_formed(diff._word_diff(old, new, capacity), old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [("", ""), ("", "added"), ("gone", ""), ("same", "same"), ("a\ud800b", "a\udfffb c")],
    ids=["empty", "from-empty", "to-empty", "equal", "lone-surrogates"],
)
def test_word_diff_edge_cases(engine: str, old: str, new: str) -> None:
    assert_well_formed(word_diff(old, new), old, new)


def test_vocabulary_beyond_the_bmp(engine: str) -> None:
    words = [f"w{i}" for i in range(70_000)]  # more distinct tokens than the BMP has codes
    old = " ".join(words)
    words[10], words[35_000], words[-1] = "alpha", "beta", "gamma"
    new = " ".join(words)
    old_codes, _, _ = diff._encode(diff._TOKEN.findall(old), [], diff._MAX_CODES)
    assert max(old_codes) > "\uffff"
    ops = word_diff(old, new)
    assert_well_formed(ops, old, new)
    assert [text for op, text in ops if op] == ["w10", "alpha", "w35000", "beta", "w69999", "gamma"]


@pytest.mark.slow
def test_vocabulary_beyond_every_code_point() -> None:
    words = [f"w{i}" for i in range(diff._MAX_CODES)]  # twice as many tokens with the spaces
    old = " ".join(words)
    words[10], words[-1] = "alpha", "omega"
    new = " ".join(words)
    ops = word_diff(old, new)
    assert_well_formed(ops, old, new)
    assert ops[1:3] == [(-1, "w10"), (1, "alpha")]  # exact where codes last, coarser after


# --- readability -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "ops"),
    [
        ("the cat", "the big cat", [(0, "the "), (1, "big "), (0, "cat")]),
        (
            "They killed him.",
            "They kills him.",
            [(0, "They "), (-1, "killed"), (1, "kills"), (0, " him.")],
        ),
        ("A.\nC.", "A.\nB.\nC.", [(0, "A.\n"), (1, "B.\n"), (0, "C.")]),
        ("One. Two. Three.", "One. Three.", [(0, "One. "), (-1, "Two. "), (0, "Three.")]),
    ],
    ids=["word-inserted", "whole-word-replaced", "paragraph-inserted", "sentence-removed"],
)
def test_edits_sit_where_they_read_well(engine: str, old: str, new: str, ops: list[Op]) -> None:
    assert word_diff(old, new) == ops


# --- compute_change ----------------------------------------------------------------------------


@given(old_title=texts, old_body=texts, new_title=texts, new_body=texts)
def test_change_documents_and_spans(
    old_title: str, old_body: str, new_title: str, new_body: str
) -> None:
    change = compute_change(old_title, old_body, new_title, new_body)
    old = document(old_title, body_after_title(old_title, old_body))
    new = document(new_title, body_after_title(new_title, new_body))
    assert (change.old_document, change.new_document) == (old, new)
    assert "".join(new[a:b] for a, b in change.inserted_spans) == "".join(
        text for op, text in change.ops if op == 1
    )
    assert "".join(old[a:b] for a, b in change.deleted_spans) == "".join(
        text for op, text in change.ops if op == -1
    )
    for spans, size in ((change.inserted_spans, len(new)), (change.deleted_spans, len(old))):
        assert all(0 <= a < b <= size for a, b in spans)
        assert all(b <= c for (_, b), (c, _) in pairwise(spans))
    assert all(passage and passage == passage.strip() for passage in change.added + change.removed)
    assert change.words_changed == change.words_added + change.words_removed


def test_identical_versions_change_nothing() -> None:
    change = compute_change("Title", "Body text.", "Title", "Body text.")
    assert change.ops == ((0, "Title\n\nBody text."),)
    assert (change.added, change.removed, change.words_changed, hunks(change)) == ((), (), 0, [])


def test_a_moved_number_is_not_a_revised_one() -> None:
    change = compute_change("T", "12 died. Then 40 fled.", "T", "40 fled. Then 12 died.")
    assert change.removed and not change.numbers_removed and not change.numbers_added


# --- hunks -------------------------------------------------------------------------------------


def test_hunks_give_context_within_the_paragraph() -> None:
    change = compute_change(
        "Blast",
        "First paragraph.\nPolice said one two three four 12 people five six seven eight died.",
        "Blast",
        "First paragraph.\nPolice said one two three four 15 people five six seven eight died.",
    )
    at = change.new_document.index("15 people")  # where the hunk is in the new document
    assert hunks(change, context_words=3) == [
        Hunk(before="two three four ", removed="12", added="15", after=" people five six", at=at)
    ]
    assert hunks(change.ops, context_words=0) == [Hunk("", "12", "15", "", at)]
    assert hunks(change)[0].before == "Police said one two three four "


@given(old=texts, new=texts, context=st.integers(min_value=0, max_value=4))
def test_hunks_are_excerpts_of_both_versions(old: str, new: str, context: int) -> None:
    change: Change = compute_change("", old, "", new)
    found = hunks(change, context_words=context)
    ops = change.ops
    starts = [i for i, (op, _) in enumerate(ops) if op and (i == 0 or ops[i - 1][0] == 0)]
    assert len(found) == len(starts)
    assert "".join(h.removed for h in found) == "".join(t for op, t in change.ops if op == -1)
    assert "".join(h.added for h in found) == "".join(t for op, t in change.ops if op == 1)
    for hunk in found:
        assert hunk.before + hunk.removed + hunk.after in change.old_document
        assert hunk.before + hunk.added + hunk.after in change.new_document
        new = change.new_document  # the hunk is where it says, after its context
        assert new[: hunk.at].endswith(hunk.before)
        assert new[hunk.at :].startswith(hunk.added + hunk.after)
        assert len(diff._WORDS.findall(hunk.before)) <= context
        assert len(diff._WORDS.findall(hunk.after)) <= context


def test_a_headline_repeated_atop_the_body_changes_once() -> None:
    body = "Troops withdraw from the border\nAt least 12 people were killed."
    new_body = "Troops return to the border\nAt least 12 people were killed."
    change = compute_change(
        "Troops withdraw from the border", body, "Troops return to the border", new_body
    )
    assert change.headline_changed
    assert [(h.removed, h.added) for h in hunks(change)] == [("withdraw from", "return to")]
    # Only a first line equal to the title is dropped; a body that is just the title stays.
    assert body_after_title("Title", "Title") == "Title"
    assert body_after_title("Title", "title\n\nText") == "Text"
    assert body_after_title("Title", "Other\nTitle") == "Other\nTitle"
