"""An alert's permalink in the web view (:mod:`watcher.web`) and an alert as JSON.

One place for both, because three readers must agree on them: the message templates link
to the diff, ``watcher alerts --json`` prints the JSON, and the web API answers with the
very same fields.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from watcher.records import AlertRecord


def alert_path(alert: AlertRecord) -> str | None:
    """Where the web view shows what an alert is about: the diff of an edit, the version of
    a new article, the feed of a feed-health alert."""
    if alert.article_id and alert.version:
        previous = (alert.detail.get("previous") or {}).get("version")
        if isinstance(previous, int) and previous != alert.version:
            return f"/articles/{alert.article_id}/diff/{previous}/{alert.version}"
        return f"/articles/{alert.article_id}/versions/{alert.version}"
    if alert.feed:
        return f"/feeds/{quote(alert.feed, safe='')}"
    return None


def alert_url(base_url: str | None, alert: AlertRecord) -> str | None:
    """The permalink, when the web view's address (``web.base_url``) is configured."""
    path = alert_path(alert)
    return None if base_url is None or path is None else base_url.rstrip("/") + path


def alert_json(alert: AlertRecord, base_url: str | None = None) -> dict[str, Any]:
    """An alert as ``watcher alerts --json`` and ``/api/v1/alerts`` give it."""
    detail = alert.detail
    return {
        "id": alert.id,
        "rule": alert.rule,
        "event": alert.event,
        "feed": alert.feed,
        "url": alert.url,
        "title": alert.title,
        "version": alert.version,
        "created_at": alert.created_at.isoformat(),
        "matched": list(alert.matched),
        # What kind of edit (see watcher.pipeline.classes); [] for a new article.
        "classes": list(detail.get("classes", [])),
        "added": detail.get("added", []),
        "removed": detail.get("removed", []),
        "delivered": alert.delivered,
        "deliveries": [
            {
                "notifier": d.notifier,
                "state": d.state,
                "attempts": d.attempts,
                "next_try_at": d.next_try_at.isoformat() if d.next_try_at else None,
                "sent_at": d.sent_at.isoformat() if d.sent_at else None,
                "last_error": d.last_error,
            }
            for d in alert.deliveries
        ],
        "detail": {k: v for k, v in detail.items() if k not in ("added", "removed")},
        "diff_url": alert_url(base_url, alert),
    }
