"""Each article's recent check outcomes, as the store keeps them (SQLite and PostgreSQL):
the newest last, at most MAX_CHECKS, failed checks and the first version left out."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from support.archive import START, fill
from watcher.config.live import MAX_CHECKS
from watcher.records import CheckRecord, NewVersion
from watcher.storage.store import Store


def test_outcomes_keep_the_newest_and_skip_failures(store: Store) -> None:
    article_id = fill(store, feeds=1, articles=1, versions=1).article_ids[0]
    assert store.article(article_id).recent_checks == ""  # the first version is no outcome
    when = START + timedelta(days=1)
    for _ in range(MAX_CHECKS + 8):
        store.record_check(article_id, CheckRecord(when, None))  # the same text
    text = "A different text altogether, with a new sentence in it."
    version = NewVersion("T", text, hashlib.sha1(text.encode()).hexdigest(), "page")
    store.record_check(article_id, CheckRecord(when, None, version=version))
    store.record_check(article_id, CheckRecord(when, None, error="HTTP 503"))
    store.record_check(article_id, CheckRecord(when, None, seen_again=1))
    recent = store.article(article_id).recent_checks
    assert len(recent) == MAX_CHECKS and recent == "-" * (MAX_CHECKS - 2) + "cc"
