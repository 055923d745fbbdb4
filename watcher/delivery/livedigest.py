"""A live page's alerts as one digest per article (see :mod:`watcher.pipeline.livepages`).

An alert raised while its article was a live page carries ``live`` in its detail. For a
notifier without a digest of its own, such alerts wait until the end of the ``live_pages.
digest`` period they were raised in (periods counted from the Unix epoch, so every notifier
and every process agrees on them), then all the article's alerts of that period go as one
digest message. A notifier with its own ``digest`` bundles everything anyway.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from watcher.records import AlertRecord, PendingDelivery

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
VersionKey = tuple[int, int, str, datetime] | int
MessageKey = VersionKey | tuple[str, int]


def is_live(alert: AlertRecord) -> bool:
    return bool(alert.article_id) and bool(alert.detail.get("live"))


def period_end(moment: datetime, period: timedelta) -> datetime:
    """The end of the ``period``-long slice of time ``moment`` is in."""
    elapsed = moment - _EPOCH
    return _EPOCH + (elapsed // period + 1) * period


def hold_live(
    waiting: Sequence[PendingDelivery], now: datetime, period: timedelta
) -> tuple[list[PendingDelivery], dict[datetime, list[int]]]:
    """The deliveries to send now, and the live ones to hold (by when their period ends)."""
    ready: list[PendingDelivery] = []
    held: dict[datetime, list[int]] = defaultdict(list)
    for delivery in waiting:
        end = period_end(delivery.alert.created_at, period)
        if is_live(delivery.alert) and delivery.state == "pending" and end > now:
            held[end].append(delivery.id)
        else:
            ready.append(delivery)
    return ready, dict(held)


def message_key(alert: AlertRecord) -> MessageKey:
    """What makes alerts one message: the same version of the same article; for a live
    page, the same article (its digest); a feed-health alert has none: it is always alone."""
    if is_live(alert):
        return ("live", alert.article_id)
    return version_key(alert)


def version_key(alert: AlertRecord) -> VersionKey:
    """The same check's news about one version of the same article (an edit, or its
    take-down); a feed-health alert has none: it is always alone."""
    if not alert.article_id:
        return -alert.id
    return (alert.article_id, alert.version, alert.event, alert.created_at)
