"""Polite polling against a real loopback server: failing feeds back off exponentially (at
most 6 h), Retry-After is honoured, 410 Gone disables a feed until its URL changes."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest

from support.clock import Clock
from support.server import LoopbackServer, Reply
from watcher.config.loading import parse_config
from watcher.config.models import Config
from watcher.storage.store import Store
from watcher.tasks import PollOutcome, open_context, poll_backoff, poll_feed

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>One</title><link>https://news.example.org/one</link><guid>one</guid></item>
</channel></rss>"""


def config_for(server: LoopbackServer, path: str = "/feed.xml") -> Config:
    return parse_config(
        f"""
        defaults: {{interval: 1m}}
        feeds: [{{name: wire, url: "{server.url(path)}"}}]
        """
    )


@contextmanager
def poller(config: Config, store: Store, clock: Clock) -> Iterator[Callable[[], PollOutcome]]:
    """Polls of one feed in one context kept open, as the daemon does."""
    with asyncio.Runner() as runner:
        opened = open_context(config, store, clock)
        ctx = runner.run(opened.__aenter__())
        try:
            yield lambda: runner.run(poll_feed(ctx, "wire"))
        finally:
            runner.run(opened.__aexit__(None, None, None))


def poll(config: Config, store: Store, clock: Clock) -> PollOutcome:
    with poller(config, store, clock) as once:
        return once()


def test_backoff_doubles_and_is_capped_at_six_hours() -> None:
    interval = timedelta(minutes=10)
    waits = [poll_backoff(interval, streak) for streak in range(1, 12)]
    assert waits[:4] == [interval, interval * 2, interval * 4, interval * 8]
    assert max(waits) == timedelta(hours=6) and waits[-1] == timedelta(hours=6)
    # A feed polled less often than the cap is never polled more often for failing.
    assert poll_backoff(timedelta(hours=12), 3) == timedelta(hours=12)


def test_a_failing_feed_is_polled_less_and_less_often(
    loopback: LoopbackServer, store: Store
) -> None:
    loopback.route("/feed.xml", Reply(status=500, body="oops"))
    config, clock = config_for(loopback), Clock()
    polled_at = []
    with poller(config, store, clock) as once:
        for _ in range(60):  # an hour of one-minute job runs
            if once().status == "failed":
                polled_at.append(clock.now)
            clock.now += timedelta(minutes=1)
    gaps = [(b - a).total_seconds() / 60 for a, b in itertools.pairwise(polled_at)]
    assert gaps[:5] == [1, 2, 4, 8, 16], gaps
    assert len(loopback.requests_to("/feed.xml")) == len(polled_at) < 10
    state = store.feed_state("wire")
    assert state.error_streak == len(polled_at) and "HTTP 500" in (state.last_error or "")
    loopback.route("/feed.xml", Reply(body=RSS, headers={"Content-Type": "application/rss+xml"}))
    clock.now = state.next_poll_at or clock.now
    assert poll(config, store, clock).status == "ok"
    assert store.feed_state("wire").error_streak == 0
    clock.now += timedelta(minutes=1)
    assert poll(config, store, clock).status == "ok"  # back to its interval at once


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(loopback: LoopbackServer, store: Store, status: int) -> None:
    loopback.route("/feed.xml", Reply(status=status, headers={"Retry-After": "3600"}))
    config, clock = config_for(loopback), Clock()
    with poller(config, store, clock) as once:
        assert once().status == "failed"
        assert store.feed_state("wire").next_poll_at == clock.now + timedelta(hours=1)
        for _ in range(59):
            clock.now += timedelta(minutes=1)
            assert once().status == "skipped"
        assert len(loopback.requests_to("/feed.xml")) == 1
        clock.now += timedelta(minutes=1)
        assert once().status == "failed"
    assert len(loopback.requests_to("/feed.xml")) == 2


def test_410_gone_disables_the_feed_until_its_url_changes(
    loopback: LoopbackServer, store: Store
) -> None:
    loopback.route("/feed.xml", Reply(status=410))
    loopback.route("/new.xml", Reply(body=RSS, headers={"Content-Type": "application/rss+xml"}))
    config, clock = config_for(loopback), Clock()
    outcome = poll(config, store, clock)
    assert outcome.status == "disabled" and "410" in (outcome.error or "")
    for _ in range(5):
        clock.now += timedelta(days=1)
        assert poll(config, store, clock).status == "disabled"
    assert len(loopback.requests_to("/feed.xml")) == 1
    state = store.feed_state("wire")
    assert state.disabled_at is not None and "disabled" in (state.last_error or "")
    moved = config_for(loopback, "/new.xml")
    assert poll(moved, store, clock).status == "ok"
    assert store.feed_state("wire").disabled_at is None
