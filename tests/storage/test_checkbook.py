"""Unchanged checks written in batches (watcher.storage.checkbook), on SQLite and PostgreSQL:
held inside a batch, written at its end, superseded by any later write, due again if lost."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from watcher.records import CheckRecord, FeedEntry, NewVersion
from watcher.storage import checkbook
from watcher.storage.store import Store

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url)
    opened.sync_feeds([("a", "http://a.example/feed")])
    entries = [
        FeedEntry(f"k{i}", None, f"http://n.example/{i}", None, f"T{i}", "<p>x</p>", None)
        for i in range(3)
    ]
    opened.add_entries("a", entries, T0)
    yield opened
    opened.close()


def unchanged(etag: str = '"e1"') -> CheckRecord:
    return CheckRecord(T0, LATER, etag=etag)


def test_held_until_the_batch_ends_then_one_write(store: Store) -> None:
    ids = store.due_article_ids(T0)
    with store.batched_checks():
        for article_id in ids:
            assert store.record_check(article_id, unchanged()) is None
        assert store.due_article_ids(T0) == ids  # nothing written yet
    assert store.due_article_ids(T0) == []
    for article_id in ids:
        article = store.article(article_id)
        assert (article.checks, article.etag, article.last_checked) == (1, '"e1"', T0)
        assert article.next_check_at == LATER and article.feeds == ("a",)


def test_outside_a_batch_written_at_once(store: Store) -> None:
    first = store.due_article_ids(T0)[0]
    store.record_check(first, unchanged())
    assert store.article(first).checks == 1


def test_two_checks_of_one_article_count_twice(store: Store) -> None:
    first = store.due_article_ids(T0)[0]
    with store.batched_checks():
        store.record_check(first, unchanged('"e1"'))
        store.record_check(first, unchanged('"e2"'))
    article = store.article(first)
    assert (article.checks, article.etag) == (2, '"e2"')


def test_a_later_write_is_the_one_that_stays(store: Store) -> None:
    first = store.due_article_ids(T0)[0]
    version = NewVersion(title="T", text="body", content_hash="h1", source="page")
    with store.batched_checks():
        store.record_check(first, unchanged())
        store.record_check(first, CheckRecord(LATER, None, version=version))
    article = store.article(first)
    assert article.checks == 2 and article.current_version == 1
    assert article.status == "retired" and article.next_check_at is None


def test_a_batch_flushes_when_full(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkbook, "FLUSH_EVERY", 2)
    ids = store.due_article_ids(T0)
    with store.batched_checks():
        for article_id in ids:
            store.record_check(article_id, unchanged())
        assert len(store.due_article_ids(T0)) == 1  # two written, the third waits
    assert store.due_article_ids(T0) == []


def test_a_batch_cut_short_still_writes(store: Store) -> None:
    ids = store.due_article_ids(T0)
    with pytest.raises(KeyboardInterrupt), store.batched_checks():
        store.record_check(ids[0], unchanged())
        raise KeyboardInterrupt
    assert store.article(ids[0]).checks == 1


def test_lost_unflushed_checks_leave_the_article_due(db_url: str, store: Store) -> None:
    """A crash before the flush: the article is due again, checked again (idempotent)."""
    ids = store.due_article_ids(T0)
    with store.batched_checks():
        store.record_check(ids[0], unchanged())
        store._pending.clear()  # what a SIGKILL does to the pending rows
    other = Store.open(db_url)
    try:
        assert other.due_article_ids(T0) == ids and other.article(ids[0]).checks == 0
    finally:
        other.close()


def test_a_batched_check_writes_what_a_single_one_writes(store: Store) -> None:
    """The batch UPDATE ends a run of gone answers and adds a "same" outcome (live pages),
    as record_check outside a batch does; gone answers themselves are not batched."""
    batched, single = store.due_article_ids(T0)[:2]
    for article_id in (batched, single):
        store.record_check(article_id, CheckRecord(T0, LATER, error="HTTP 404", gone=True))
        assert store.article(article_id).gone_checks == 1
    with store.batched_checks():
        store.record_check(batched, unchanged())
        store.record_check(batched, unchanged())
        assert store.record_check(single, CheckRecord(T0, LATER, error="x", gone=True)) is None
        assert store.article(single).gone_checks == 2  # written at once, not held
    store.record_check(single, unchanged())
    held, direct = store.article(batched), store.article(single)
    assert held.gone_checks == direct.gone_checks == 0
    assert held.recent_checks == "--" and direct.recent_checks == "-"
