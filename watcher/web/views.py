"""What the pages show, worked out from stored records: diffs cut into marks and rows,
timelines, cursors. Pure functions, no I/O: the handlers fetch, these shape."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from watcher.pipeline.diff import Change, hunks, versions_change
from watcher.records import DigestSet, VersionRecord

Segment = tuple[int, str]  # (-1 removed | 0 kept | 1 added, text)
# The id columns are INTEGER: on PostgreSQL 32 bits. A larger id names nothing (and must not
# reach the query, which would fail on it).
MAX_ID = 2**31 - 1
PAGE_SIZE = 50
MAX_PAGE = 200


def change_between(old: VersionRecord, new: VersionRecord, furniture: DigestSet) -> Change:
    """The diff `watcher diff` shows (see :func:`watcher.pipeline.diff.versions_change`)."""
    return versions_change(old, new, furniture)


@dataclass(frozen=True)
class SplitRow:
    """One paragraph of the side-by-side view: the old side and the new side."""

    old: tuple[Segment, ...]
    new: tuple[Segment, ...]

    @property
    def changed(self) -> bool:
        return any(op != 0 for op, _ in self.old + self.new)


def split_rows(ops: Sequence[Segment]) -> list[SplitRow]:
    """The word diff cut at the paragraph breaks both versions share."""
    rows: list[SplitRow] = []
    old: list[Segment] = []
    new: list[Segment] = []
    for op, text in ops:
        if op != 0:
            (old if op < 0 else new).append((op, text))
            continue
        for i, part in enumerate(text.split("\n\n")):
            if i > 0:
                rows.append(SplitRow(tuple(old), tuple(new)))
                old, new = [], []
            if part:
                old.append((0, part))
                new.append((0, part))
    if old or new:
        rows.append(SplitRow(tuple(old), tuple(new)))
    return rows


def change_facts(change: Change) -> dict[str, Any]:
    """What a reader looks at first, in the order the alert messages give it."""
    return {
        "headline_changed": change.headline_changed,
        "old_title": change.old_title,
        "new_title": change.new_title,
        "words_added": change.words_added,
        "words_removed": change.words_removed,
        "numbers_removed": list(change.numbers_removed),
        "numbers_added": list(change.numbers_added),
        "quotes_removed": list(change.quotes_removed),
        "quotes_added": list(change.quotes_added),
    }


def change_hunks(change: Change, context_words: int = 12) -> list[dict[str, str]]:
    return [
        {"before": h.before, "removed": h.removed, "added": h.added, "after": h.after}
        for h in hunks(change, context_words)
    ]


def words(text: str) -> int:
    return len(text.split())


def parse_id(text: str) -> int | None:
    """A path or cursor id: digits naming something that can exist, else None (a 404)."""
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def parse_cursor(text: str) -> int | None:
    """A page cursor (an id: the page holds what comes before it); None when it is not one.
    A cursor past the largest possible id is the first page."""
    if not text.isascii() or not text.isdigit() or len(text) > 10 or int(text) == 0:
        return None
    return min(int(text), MAX_ID)


def parse_limit(text: str | None) -> int | None:
    """A page size, 1 to MAX_PAGE (PAGE_SIZE when absent); None when it is not one."""
    if text is None or text == "":
        return PAGE_SIZE
    value = parse_id(text)
    return value if value is not None and value <= MAX_PAGE else None


def next_cursor(ids: Sequence[int], limit: int) -> str | None:
    """The cursor of the next page: the last id shown, when the page was full."""
    return str(ids[-1]) if len(ids) == limit and ids else None
