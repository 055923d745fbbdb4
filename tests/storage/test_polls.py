"""A poll's outcome written to its feed's row (one prebuilt UPDATE), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watcher.errors import StoreError
from watcher.records import PollRecord
from watcher.storage.store import Store

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
NEXT = T0 + timedelta(minutes=5)


def test_a_success_then_a_failure_then_a_skip(store: Store) -> None:
    store.sync_feeds([("a", "http://a.example/feed")])
    store.record_poll("a", PollRecord(T0, NEXT, status=200, etag='"1"', title="A", entries=3))
    store.record_poll("a", PollRecord(T0, NEXT, status=200, title=""))  # no title: kept
    state = store.feed_state("a")
    assert (state.title, state.last_success_at, state.entries_seen) == ("A", T0, 3)
    later = T0 + timedelta(hours=1)
    store.record_poll("a", PollRecord(later, NEXT, status=410, error="gone", disable=True))
    state = store.feed_state("a")
    assert (state.last_polled_at, state.disabled_at, state.error_streak) == (later, later, 1)
    assert state.last_success_at == T0 and state.last_error == "gone"
    store.record_poll("a", PollRecord(later, NEXT + timedelta(days=1), skipped=True))
    assert store.feed_state("a").next_poll_at == NEXT + timedelta(days=1)


def test_an_unknown_feed_is_an_error(store: Store) -> None:
    with pytest.raises(StoreError, match="no feed named"):
        store.record_poll("nope", PollRecord(T0, NEXT, status=200))
