"""Live pages: an article whose text changes on most checks (a live blog, a page with a
rotating body). Recognised from its recent check outcomes, it keeps its alerts, but they are
bundled into one digest per article (see :mod:`watcher.delivery.livedigest`) instead of one
message per check; when it calms down it is an ordinary article again.

The store keeps each article's last outcomes as a string, oldest first: ``c`` a check that
found a text different from the one shown before (an edit, a revert, a flip), ``-`` one that
found the same text. Failed checks are not outcomes: a page that errors is not calm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from watcher.config.live import MAX_CHECKS, LivePagesSettings
from watcher.records import NewAlert

CHANGED = "c"
SAME = "-"


def with_outcome(recent: str, changed: bool) -> str:
    """The outcomes after one more check: the newest appended, only MAX_CHECKS kept."""
    return (recent + (CHANGED if changed else SAME))[-MAX_CHECKS:]


def changes_in_window(recent: str, settings: LivePagesSettings) -> int:
    return recent[-settings.checks :].count(CHANGED)


def is_live(recent: str, settings: LivePagesSettings) -> bool:
    """Changed on at least ``changes`` of the last ``checks`` checks."""
    return settings.enabled and changes_in_window(recent, settings) >= settings.changes


def live_fact(recent: str, settings: LivePagesSettings) -> dict[str, Any] | None:
    """What ``watcher status`` and an alert say of a live page (None: not live)."""
    if not is_live(recent, settings):
        return None
    window = min(len(recent), settings.checks)
    return {"changes": changes_in_window(recent, settings), "checks": window}


def mark_live(
    alerts: Sequence[NewAlert], recent: str, settings: LivePagesSettings
) -> tuple[NewAlert, ...]:
    """The alerts of a check, its edits' (``changed``) marked ``live`` in their detail when
    the article is a live page counting this check as a change (``recent`` is its outcomes
    before it): the outbox bundles those per article."""
    if not any(a.event == "changed" for a in alerts):
        return tuple(alerts)
    fact = live_fact(with_outcome(recent, True), settings)
    if fact is None:
        return tuple(alerts)
    return tuple(
        replace(a, detail={**a.detail, "live": fact}) if a.event == "changed" else a
        for a in alerts
    )
