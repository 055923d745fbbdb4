"""Time inside watcher is timezone-aware UTC (the store keeps it so: schema.UTCTimestamp)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
