"""Property: whatever header bytes a server sends, a pass never crashes and never forgets.

A raw loopback server answers a feed and its article with random statuses and random header
lines (names that matter and names that do not; values with non-ASCII, obs-text, control
characters, quotes, dates, digits). Over several passes on one database: no exception
escapes, nothing is logged as an error or with a traceback, a failed poll or check is the
one recorded on its row, what is stored as a validator can be sent again, and every pass
polls the feed (and checks the article) again.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.clock import Clock
from support.raw import RawHeader, RawServer, raw_reply
from support.wire import HTML_TYPE, PAGE, RSS_TYPE, feed_body, make_config, tracebacks
from watcher.config.models import Config
from watcher.storage.store import Store
from watcher.tasks import PassSummary, open_context, run_pass

PASSES = 3
# Framing headers would only desynchronise the raw server's replies from their bodies.
FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})
SENDABLE = re.compile(r"[\x20-\x7e]*")

FRAGMENTS = st.sampled_from(
    [b'"', b"W/", b"\xc3\xa9", b"\xe9", b"\xff", b"\x01", b"\x7f", b" ", b"\t", b"0", b"99",
     b"-", b"\xc2\xb2", b"\xd9\xa3", b"1e9", b"GMT", b"Mon, 03 Apr 2023 01:02:03 ", b"9999",
     b"/", b"?", b"%", b"[", b":", b"text/html", b"; charset=", b"utf-8", b"rot13", b"gzip",
     b"page.html", b"feed.xml", b","]
)  # fmt: skip
VALUES = st.lists(FRAGMENTS | st.binary(max_size=3), max_size=6).map(
    lambda parts: b"".join(parts).replace(b"\r", b"").replace(b"\n", b"")
)
NAMES = st.sampled_from(
    ["ETag", "Last-Modified", "Retry-After", "Location", "Content-Type", "Content-Encoding",
     "Content-Location", "etag", "X-Anything"]
) | st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,10}", fullmatch=True)  # fmt: skip
HEADERS = st.lists(
    st.tuples(NAMES.filter(lambda name: name.lower() not in FRAMING), VALUES), max_size=5
)
STATUSES = st.sampled_from([200, 200, 200, 304, 301, 302, 307, 404, 429, 503])
ANSWERS = st.tuples(STATUSES, HEADERS)


@pytest.fixture(scope="module")
def raw() -> Iterator[RawServer]:
    with RawServer() as server:
        yield server


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    feed_answers=st.lists(ANSWERS, min_size=PASSES, max_size=PASSES),
    page_answers=st.lists(ANSWERS, min_size=PASSES, max_size=PASSES),
)
def test_random_headers_never_crash_a_pass_and_failures_are_recorded(
    raw: RawServer,
    caplog: pytest.LogCaptureFixture,
    feed_answers: list[tuple[int, list[RawHeader]]],
    page_answers: list[tuple[int, list[RawHeader]]],
) -> None:
    caplog.set_level(logging.INFO)
    caplog.clear()
    config = make_config(raw.url("/feed.xml"))
    clock = Clock()
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(f"sqlite:///{Path(folder) / 'watcher.db'}")
        try:
            for feed_answer, page_answer in zip(feed_answers, page_answers, strict=True):
                serve(raw, "/feed.xml", feed_answer, RSS_TYPE, feed_body(raw.url("/page.html")))
                serve(raw, "/page.html", page_answer, HTML_TYPE, PAGE)
                one_pass_holds(raw, store, clock, caplog, config)
        finally:
            store.close()


def serve(
    raw: RawServer, path: str, answer: tuple[int, list[RawHeader]], kind: str, body: bytes
) -> None:
    status, headers = answer
    raw.route(path, raw_reply(status, [("Content-Type", kind), *headers], body))


def one_pass_holds(
    raw: RawServer, store: Store, clock: Clock, caplog: pytest.LogCaptureFixture, config: Config
) -> None:
    polled_before = len(raw.requests_to("/feed.xml"))
    tracked = store.due_article_ids(clock.now, everything=True)
    streak_before = sum(state.error_streak for state in store.feed_states(["wire"]))

    async def go() -> PassSummary:
        async with open_context(config, store, clock) as ctx:
            return await run_pass(ctx, recheck_all=True)

    summary = asyncio.run(go())

    assert tracebacks(caplog.records) == []
    assert len(raw.requests_to("/feed.xml")) > polled_before  # polled, whatever came before
    (poll,) = summary.polls
    state = store.feed_state("wire")
    assert poll.status in ("ok", "not_modified", "failed"), poll
    if poll.status == "failed":
        assert state.last_error == poll.error and state.error_streak == streak_before + 1
    else:
        assert state.error_streak == 0 and state.last_error is None
    for check in summary.checks:
        article = store.article(check.article_id)
        if check.status == "failed":
            assert article.last_error == check.error and article.failures >= 1
        else:
            assert article.last_error is None and article.failures == 0
        assert_sendable(article.etag, article.last_modified)
    assert {c.article_id for c in summary.checks} >= set(tracked)  # every article checked
    assert_sendable(state.etag, state.last_modified)
    clock.now += timedelta(days=2)  # past any back-off: the next pass must poll


def assert_sendable(*validators: str | None) -> None:
    for value in validators:
        assert value is None or SENDABLE.fullmatch(value), value
