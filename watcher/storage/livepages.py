"""Each article's recent check outcomes (see :mod:`watcher.pipeline.livepages`): appended as
each check is recorded (read back for the live pages ``watcher status`` and ``watcher feeds``
list by :meth:`watcher.storage.reads.ReadQueries.changing_articles`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func

from watcher.config.live import MAX_CHECKS
from watcher.records import CheckRecord
from watcher.storage.schema import ArticleRow

_ARTICLE = ArticleRow.__table__  # type: ignore[attr-defined]


def outcome_mark(check: CheckRecord, current: int | None) -> str:
    """What a check adds to the article's recent outcomes (``current``: the number of the
    version it stored, if it stored one): "c" when it found a text other than the one shown
    before (a new version, or one gone back to), "-" when the same, "" when it is no outcome:
    the first check (version 1) and failed checks."""
    if check.error is not None or current == 1:
        return ""
    return "c" if check.seen_again is not None or check.version is not None else "-"


def outcome_values(mark: str) -> dict[str, Any]:
    """The ``article`` values that append ``mark`` ("" appends nothing) to its outcomes."""
    if not mark:
        return {}
    column = _ARTICLE.c.recent_checks
    # One character added at a time, so dropping the oldest keeps at most MAX_CHECKS.
    kept = case((func.length(column) >= MAX_CHECKS, func.substr(column, 2)), else_=column)
    return {"recent_checks": kept + mark}
