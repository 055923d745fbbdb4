"""The verbs: ``poll_feed``, ``check_article``, ``dispatch``, ``prune`` and a whole ``run_pass``.

This is the only package that knows the pipeline order (fetch → extract → normalise →
compare → store → diff → rules → alert rows). Task functions take a :class:`Context` and ids
or names, are idempotent (re-running one after a crash stores nothing twice: see
:mod:`watcher.storage.schema`) and contain no scheduler code, so the embedded scheduler and a
queue worker can both call them. What they are called with and what they return is
importable from here.
"""

from __future__ import annotations

from watcher.tasks.check import article_settings, check_article, link_guard, next_check_time
from watcher.tasks.context import Context, fetch_limits, open_context, reconfigure
from watcher.tasks.outcomes import CheckOutcome, PassSummary, PollOutcome
from watcher.tasks.passes import (
    check_articles,
    check_due,
    check_health,
    dispatch,
    prune,
    run_pass,
)
from watcher.tasks.poll import poll_backoff, poll_feed

__all__ = [
    "CheckOutcome",
    "Context",
    "PassSummary",
    "PollOutcome",
    "article_settings",
    "check_article",
    "check_articles",
    "check_due",
    "check_health",
    "dispatch",
    "fetch_limits",
    "link_guard",
    "next_check_time",
    "open_context",
    "poll_backoff",
    "poll_feed",
    "prune",
    "reconfigure",
    "run_pass",
]
