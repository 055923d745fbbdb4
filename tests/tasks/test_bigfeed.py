"""A big feed: entries taken in chunks with bulk lookups, a cap per poll, identical bytes not
parsed again, and ``watcher run`` answering /healthz throughout (found from outside: a
50,000-entry feed once held the event loop for 62 s, past systemd's WatchdogSec=60)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from support.bigfeed import big_rss
from support.exposition import value
from support.processes import running, stop, wait_for
from support.receivers import free_port
from support.server import LoopbackServer, Reply
from watcher.config.loading import parse_config
from watcher.pipeline.feeds import ParsedFeed, parse_feed
from watcher.records import FeedEntry
from watcher.storage.entries import ENTRY_CHUNK
from watcher.storage.store import Store
from watcher.tasks import open_context, poll_feed
from watcher.tasks import poll as poll_task

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
RSS = "application/rss+xml"


def story(i: int, *, guid: str | None = None, link: str | None = None) -> FeedEntry:
    url = link or f"http://news.example/story/{i}"
    return FeedEntry(
        key=guid or url,
        guid=guid,
        link=url,
        canonical_url=url,
        title=f"Story {i}",
        content_html=f"<p>text {i}</p>",
        published=None,
    )


@pytest.fixture
def two_feeds(store: Store) -> Store:
    store.sync_feeds([("a", "http://a.example/feed"), ("b", "http://b.example/feed")])
    return store


@pytest.fixture
def statements(two_feeds: Store) -> Iterator[list[str]]:
    """The SQL the store runs while the test does (first words only)."""
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(" ".join(args[2].split()[:2]).upper())

    event.listen(two_feeds.engine, "before_cursor_execute", note)
    yield seen
    event.remove(two_feeds.engine, "before_cursor_execute", note)


# ------------------------------------------------------------------------ the store


def test_identity_holds_across_chunks_and_feeds(two_feeds: Store) -> None:
    store = two_feeds
    count = ENTRY_CHUNK * 2 + 7
    assert store.add_entries("a", [story(i, guid=f"g{i}") for i in range(count)], T0) == count
    # Feed b: the same stories by link (no guid), then by guid alone with a new slug.
    by_link = [story(i) for i in range(count)]
    by_guid = [story(i, guid=f"g{i}", link=f"http://news.example/new/{i}") for i in range(5)]
    assert store.add_entries("b", by_link + by_guid, T0) == 0
    assert store.counts()["articles"] == count
    moved = store.find_article("g3")
    assert moved is not None and moved.feeds == ("a", "b")
    assert moved.url == "http://news.example/story/3"  # identity kept ...
    assert moved.link == "http://news.example/new/3"  # ... fetched at its new link
    last = store.find_article(f"http://news.example/story/{count - 1}")
    assert last is not None and last.feeds == ("a", "b")
    assert store.feed_state("b").articles == count  # one link row per article and feed


def test_two_entries_of_one_story_in_one_chunk_are_one_article(two_feeds: Store) -> None:
    first = story(1, guid="g1")
    again = replace(story(1, guid="other"), title="Story 1, updated")
    assert two_feeds.add_entries("a", [first, again], T0) == 1
    article = two_feeds.find_article("http://news.example/story/1")
    assert article is not None and article.entry_title == "Story 1, updated"


def test_a_guid_names_the_oldest_of_two_matches(two_feeds: Store) -> None:
    # "u" is one article's URL (a guid-only entry) and another's guid: by guid, the older one.
    two_feeds.add_entries("a", [FeedEntry("u", "u", None, None, "A", "", None)], T0)
    two_feeds.add_entries("a", [story(2, guid="u2")], T0)
    two_feeds.add_entries("a", [FeedEntry("u2", "u2", None, None, "B", "", None)], T0)
    assert two_feeds.counts()["articles"] == 2
    assert two_feeds.add_entries("b", [FeedEntry("u", "u", None, None, "C", "", None)], T0) == 0
    found = two_feeds.find_article("u")
    assert found is not None and found.entry_title == "C" and found.feeds == ("a", "b")


def test_new_articles_are_capped_and_known_ones_still_updated(two_feeds: Store) -> None:
    store = two_feeds
    store.add_entries("a", [story(0)], T0)
    entries = [story(i) for i in range(1, 6)] + [replace(story(0), title="Story 0, revised")]
    first = store.take_entries("a", entries, T0, max_new=3)
    assert (first.new, first.deferred) == (3, 2)
    revised = store.find_article("http://news.example/story/0")
    assert revised is not None and revised.entry_title == "Story 0, revised"
    assert store.find_article("http://news.example/story/4") is None
    second = store.take_entries("a", entries, T0, max_new=3)
    assert (second.new, second.deferred) == (2, 0)
    assert store.counts()["articles"] == 6


def test_a_stop_leaves_the_chunks_not_started(two_feeds: Store) -> None:
    calls = iter([False, True, True])
    entries = [story(i) for i in range(ENTRY_CHUNK * 3)]
    taken = two_feeds.take_entries("a", entries, T0, stop=lambda: next(calls))
    assert (taken.new, taken.deferred) == (ENTRY_CHUNK, ENTRY_CHUNK * 2)
    assert two_feeds.counts()["articles"] == ENTRY_CHUNK


def test_known_entries_cost_a_few_queries_per_chunk_and_no_writes(
    two_feeds: Store, statements: list[str]
) -> None:
    entries = [story(i, guid=f"g{i}") for i in range(ENTRY_CHUNK * 4)]
    two_feeds.add_entries("a", entries, T0)
    statements.clear()
    edited = [*entries[:-1], replace(entries[-1], content_html="<p>edited</p>")]
    assert two_feeds.add_entries("a", edited, T0) == 0
    writes = [s for s in statements if s.split()[0] in ("INSERT", "UPDATE", "DELETE")]
    assert writes == ["UPDATE ARTICLE"]  # the edited entry only; every link row exists
    assert len(statements) <= 3 * 4 + 2  # lookup + link check per chunk, not per entry
    article = two_feeds.find_article("g" + str(len(entries) - 1))
    assert article is not None and article.entry_content == "<p>edited</p>"


# -------------------------------------------------------------------------- the poll


def test_identical_bytes_are_not_parsed_and_a_capped_feed_is_fetched_whole(
    loopback: LoopbackServer,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = big_rss(5)
    # An ETag would let the server answer 304 to the second poll and hide the untaken rest.
    loopback.route("/big.xml", Reply(body=body, headers={"Content-Type": RSS, "ETag": '"v1"'}))
    config = parse_config(f'feeds: [{{name: big, url: "{loopback.url("/big.xml")}"}}]')
    monkeypatch.setattr(poll_task, "MAX_NEW_ARTICLES_PER_POLL", 2)
    parsed: list[bytes] = []

    def counted(content: bytes, **options: Any) -> ParsedFeed:
        parsed.append(content)
        return parse_feed(content, **options)

    monkeypatch.setattr(poll_task, "parse_feed", counted)

    async def polls(times: int) -> list[int]:
        async with open_context(config, store) as ctx:
            return [(await poll_feed(ctx, "big")).new_articles for _ in range(times)]

    caplog.set_level("INFO", "watcher")
    assert asyncio.run(polls(4)) == [2, 2, 1, 0]
    assert len(parsed) == 3  # the fourth poll found the bytes of the third
    assert f"entries as at the last poll ({len(body)} bytes): not parsed" in caplog.text
    sent = [r.headers.get("if-none-match") for r in loopback.requests_to("/big.xml")]
    assert sent == [None, None, None, '"v1"']  # cache keys kept once every entry was taken
    assert store.feed_state("big").articles == 5


# ---------------------------------------------------------------- watcher run, as a user


def _probe(url: str, stop_probing: threading.Event, latencies: list[float]) -> None:
    with httpx.Client(timeout=10) as client:
        while not stop_probing.is_set():
            started = time.monotonic()
            try:
                client.get(url)
            except httpx.TransportError:
                pass  # not listening yet
            else:
                latencies.append(time.monotonic() - started)
            stop_probing.wait(0.1)


def _run_big_feed(loopback: LoopbackServer, tmp_path: Path, count: int, wait: float) -> None:
    body = big_rss(count, prefix=f"http://127.0.0.1:{free_port()}")  # links nobody answers
    loopback.route("/big.xml", Reply(body=body, headers={"Content-Type": RSS}))
    port = free_port()
    database = tmp_path / "watcher.db"
    config = tmp_path / "watcher.yaml"
    config.write_text(
        f"""
database: "sqlite:///{database}"
allow_private_networks: true
defaults: {{interval: 2s, recheck: [{{until: 1h, every: 1h}}]}}
feeds: [{{name: big, url: "{loopback.url("/big.xml")}"}}]
metrics: {{listen: "127.0.0.1:{port}"}}
"""
    )
    log = tmp_path / "run.log"
    latencies: list[float] = []
    stop_probing = threading.Event()
    prober = threading.Thread(
        target=_probe, args=(f"http://127.0.0.1:{port}/healthz", stop_probing, latencies)
    )
    with running(config, "run", log) as process:
        prober.start()
        try:
            wait_for(lambda: "not parsed" in log.read_text(), wait, "a re-poll of the same bytes")
        finally:
            stop_probing.set()
            prober.join()
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert stop(process) == 0, log.read_text()
    assert len(latencies) > 20 and max(latencies) < 1.0, max(latencies)
    # The identical re-poll is the one poll within a second (the others parse megabytes:
    # seconds each), fetching 2-10 MB over loopback included.
    fast = value(metrics, "watcher_feed_poll_duration_seconds_bucket", le="1.0")
    assert fast is not None and fast >= 1
    store = Store.open(f"sqlite:///{database}")
    try:
        assert store.feed_state("big").articles == count
    finally:
        store.close()
    assert "Traceback" not in log.read_text()


def test_a_feed_rebuilt_with_only_a_new_date_is_not_parsed_again(
    loopback: LoopbackServer, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    loopback.route("/big.xml", Reply(body=big_rss(3), headers={"Content-Type": RSS}))
    config = parse_config(f'feeds: [{{name: big, url: "{loopback.url("/big.xml")}"}}]')
    parsed: list[bytes] = []

    def counted(content: bytes, **options: Any) -> ParsedFeed:
        parsed.append(content)
        return parse_feed(content, **options)

    monkeypatch.setattr(poll_task, "parse_feed", counted)

    async def poll() -> str:
        async with open_context(config, store) as ctx:
            return (await poll_feed(ctx, "big")).status

    assert asyncio.run(poll()) == "ok"
    rebuilt = big_rss(3, built="Tue, 02 Dec 2026 08:00:00 GMT")
    loopback.route("/big.xml", Reply(body=rebuilt, headers={"Content-Type": RSS}))
    assert asyncio.run(poll()) == "ok"
    assert len(parsed) == 1
    loopback.route("/big.xml", Reply(body=big_rss(3, edited=[1]), headers={"Content-Type": RSS}))
    assert asyncio.run(poll()) == "ok"
    assert len(parsed) == 2  # an entry changed: parsed


def test_run_answers_health_while_a_big_feed_is_taken(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    _run_big_feed(loopback, tmp_path, 10_000, wait=60)


@pytest.mark.slow
def test_run_answers_health_while_a_50000_entry_feed_is_taken(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    _run_big_feed(loopback, tmp_path, 50_000, wait=240)
