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


def recorded_outcome(check: CheckRecord, current: int | None) -> dict[str, Any]:
    """The ``article`` values that add this re-check to its outcomes (``current``: the number
    of the version it stored, if it stored one): ``c`` when it found a text other than the
    one shown before (a new version, or one gone back to), ``-`` when the same. The first
    check (version 1) and failed checks are not outcomes."""
    if check.error is not None or current == 1:
        return {}
    changed = check.seen_again is not None or check.version is not None
    column = _ARTICLE.c.recent_checks
    # One character added at a time, so dropping the oldest keeps at most MAX_CHECKS.
    kept = case((func.length(column) >= MAX_CHECKS, func.substr(column, 2)), else_=column)
    return {"recent_checks": kept + ("c" if changed else "-")}
