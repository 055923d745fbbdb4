"""feedparser's own test corpus, served over loopback HTTP and polled by the real pipeline.

tests/test_feeds_corpus.py hands each file to ``parse_feed`` directly. Here every file is a
feed of a config, served with the ``Header: Name: value`` lines of its leading comment as
response headers, and ``run_pass`` polls them all: fetch, header handling, parse, storing the
entries and checking the new articles from the feed's own text (``fetch_article: false``).
Whatever a file holds, the pass must finish, a malformed feed must end as an error on its
feed row, and the outcome must be the one ``parse_feed`` gives for the same bytes and headers:
the trip through HTTP and the store may not change what the parser sees.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_feeds_corpus import CORPUS, corpus_headers

from support.corpus import print_outcomes
from support.server import LoopbackServer, Reply
from watcher.config.loading import parse_config
from watcher.errors import FeedError
from watcher.pipeline.feeds import parse_feed
from watcher.storage.store import Store
from watcher.tasks import PassSummary, PollOutcome, open_context, run_pass

# Feeds per pass: big enough that a pass polls many feeds at once, small enough that one
# config stays quick to validate.
BATCH = 400
# A file without Header lines was meant to be read like a local file: by its own XML
# declaration. application/xml is the one media type under which feedparser does exactly
# that, so serving it (a real server always sends some type) keeps the corpus's intent.
NEUTRAL_TYPE = "application/xml"


@dataclass(frozen=True)
class CorpusFeed:
    name: str
    relative: str
    content: bytes
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return f"/corpus/{self.relative}"


@dataclass(frozen=True)
class Expected:
    """What parse_feed says about the same bytes and headers, without HTTP or a store."""

    entries: int | None  # None: a FeedError
    warning: bool
    error: str | None


def served_headers(content: bytes) -> dict[str, str]:
    """The file's ``Header:`` lines, with a Content-Type when they name none."""
    found = corpus_headers(content)
    if not any(name.lower() == "content-type" for name in found):
        found["Content-Type"] = NEUTRAL_TYPE
    return found


def load_corpus() -> list[CorpusFeed]:
    if not CORPUS.is_dir():
        pytest.skip(f"feedparser corpus not found at {CORPUS}")
    feeds = []
    for i, path in enumerate(sorted(p for p in CORPUS.rglob("*") if p.is_file())):
        content = path.read_bytes()
        relative = path.relative_to(CORPUS).as_posix()
        feeds.append(CorpusFeed(f"c{i:04d}", relative, content, served_headers(content)))
    return feeds


def expected(feed: CorpusFeed, url: str) -> Expected:
    try:
        parsed = parse_feed(feed.content, url=url, headers=feed.headers)
    except FeedError as exc:
        return Expected(None, False, str(exc))
    return Expected(len(parsed.entries), parsed.warning is not None, None)


def batches(feeds: list[CorpusFeed]) -> Iterator[list[CorpusFeed]]:
    for start in range(0, len(feeds), BATCH):
        yield feeds[start : start + BATCH]


def run_batch(server: LoopbackServer, store: Store, batch: list[CorpusFeed]) -> PassSummary:
    lines = "\n".join(
        f'  - {{name: {feed.name}, url: "{server.url(feed.path)}"}}' for feed in batch
    )
    config = parse_config(
        "defaults: {fetch_article: false}\n"
        # Every feed is on one host: lift the politeness limits a real site would deserve.
        "fetch: {per_host: 8, concurrency: 16, deadline: 20s}\n"
        f"feeds:\n{lines}\n"
    )

    async def go() -> PassSummary:
        async with open_context(config, store) as ctx:
            return await run_pass(ctx)

    return asyncio.run(go())


def kind_of(poll: PollOutcome) -> str:
    if poll.status == "ok":
        return "ok with warning" if poll.warning else "ok"
    # "<url>: not a usable feed: not well-formed XML (line 3, ...)" -> the reason's first words
    reason = (poll.error or "").split(": ", 1)[-1].removeprefix("not a usable feed: ")
    return f"{poll.status}: {reason.split(' (')[0].split(':')[0]}"


def test_every_corpus_feed_goes_through_a_real_pass(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    feeds = load_corpus()
    for feed in feeds:
        loopback.route(feed.path, Reply(200, feed.content, feed.headers))
    store = Store.open(f"sqlite:///{tmp_path / 'corpus.db'}")
    started = time.monotonic()
    polls: dict[str, PollOutcome] = {}
    checks: Counter[str] = Counter()
    try:
        for batch in batches(feeds):
            summary = run_batch(loopback, store, batch)
            polls.update((poll.feed, poll) for poll in summary.polls)
            checks.update(summary.check_counts())
        states = {state.name: state for state in store.feed_states()}
        counts = store.counts()
    finally:
        store.close()
    elapsed = time.monotonic() - started

    kinds: Counter[str] = Counter()
    by_folder: Counter[tuple[str, str]] = Counter()
    mismatches: list[str] = []
    for feed in feeds:
        poll, state = polls[feed.name], states[feed.name]
        kind = kind_of(poll)
        kinds[kind] += 1
        by_folder[(feed.relative.split("/")[0], kind.split(":")[0])] += 1
        want = expected(feed, loopback.url(feed.path))
        got = Expected(
            poll.entries if poll.status == "ok" else None, poll.warning is not None, poll.error
        )
        if got != want:
            mismatches.append(f"{feed.relative}: over HTTP {got}, directly {want}")
        # The outcome is on the feed row, where `watcher feeds` shows it.
        assert state.last_error == poll.error, feed.relative
        # The server answered 200 even when the body is not a usable feed: the row says both.
        assert state.last_polled_at is not None, feed.relative
        assert state.last_status == 200, feed.relative
        # Every entry with an identity is tracked as an article of its feed.
        assert (state.articles > 0) == (poll.entries > 0), feed.relative

    print_outcomes(
        f"{len(feeds)} corpus feeds polled over HTTP in {elapsed:.1f} s:", kinds, by_folder
    )
    with_entries = [p for p in polls.values() if p.status == "ok" and p.entries]
    print(
        f"{len(with_entries)} of the readable feeds have entries with an identity "
        f"({sum(p.entries for p in with_entries)} in all); the store holds "
        f"{counts['articles']} articles and {counts['versions']} versions; checks {dict(checks)}"
    )

    assert len(polls) == len(feeds) > 2000
    assert not mismatches, f"{len(mismatches)} differ:\n" + "\n".join(mismatches[:20])
    # No poll crashed (run_pass turns a crash into "internal error: ..." and goes on).
    assert not [p for p in polls.values() if (p.error or "").startswith("internal error")]
    # Well-formed feeds with entries became articles, and each new article got its first
    # version from the feed text (or a recorded failure when an entry has no text at all).
    assert counts["articles"] > 0
    # A story two feeds carry with different text is checked again as soon as the second
    # feed's entry differs (the feed said it changed): some articles get a second check,
    # which may make a second version (or a first, after a first check without text).
    assert checks["new"] + checks["failed"] >= counts["articles"]
    assert counts["versions"] == checks["new"] + checks["changed"]
