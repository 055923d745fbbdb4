"""Feed health: a failing, stale or extraction-broken feed raises one "unhealthy" alert, and one
"recovered" alert when it heals — through the outbox, read back from a real webhook."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from support.clock import Clock
from support.receivers import Webhook
from support.server import LoopbackServer, Reply
from watcher.config.loading import parse_config
from watcher.config.models import Config
from watcher.pipeline.health import current_problems
from watcher.records import FeedHealthFacts
from watcher.storage.store import Store
from watcher.tasks import Context, check_articles, check_health, open_context, poll_feed


def rss(*slugs: str) -> str:
    items = "".join(
        f"<item><title>Story {s}</title><link>http://127.0.0.1/{s}</link><guid>{s}</guid>"
        f"<description>Text of story {s}.</description></item>"
        for s in slugs
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    )


def config_for(server: LoopbackServer, hook: Webhook, extra: str = "") -> Config:
    return parse_config(
        f"""
        allow_private_networks: true
        defaults: {{interval: 1m, fetch_article: false, recheck: [{{until: 7d, every: 1m}}]}}
        feeds: [{{name: wire, url: "{server.url("/feed.xml")}"}}]
        notifiers: {{ops: "{hook.url}"}}
        health: {{notify: [ops], error_streak: 3}}
        {extra}
        """
    )


@contextmanager
def context(config: Config, store: Store, clock: Clock) -> Iterator[Callable[..., Any]]:
    """Run coroutines of one context kept open, as the daemon does."""
    with asyncio.Runner() as runner:
        opened = open_context(config, store, clock)
        ctx = runner.run(opened.__aenter__())

        def run(task: Callable[..., Any], *args: Any) -> Any:
            return runner.run(task(ctx, *args))

        try:
            yield run
        finally:
            runner.run(opened.__aexit__(None, None, None))


async def send(ctx: Context) -> None:
    await ctx.outbox.dispatch()


def test_failing_polls_alert_once_then_recover(loopback: LoopbackServer, store: Store) -> None:
    clock = Clock()
    with Webhook() as hook, context(config_for(loopback, hook), store, clock) as run:
        loopback.route("/feed.xml", Reply(status=503, body="down"))
        for _ in range(12):
            run(poll_feed, "wire")
            run(check_health)
            run(send)
            clock.now += timedelta(minutes=10)
        assert len(hook.titles()) == 1
        assert hook.titles()[0].startswith("[watcher] feed wire unhealthy: 3 failed polls in a row")
        loopback.route("/feed.xml", Reply(body=rss("a"), headers={"Content-Type": "text/xml"}))
        clock.now += timedelta(hours=7)  # past any backoff
        assert run(poll_feed, "wire").status == "ok"
        (change,) = run(check_health)
        assert change.startswith("feed wire recovered (errors: 3 failed polls in a row")
        assert run(check_health) == []  # once
        run(send)
        titles = hook.titles()
        assert len(titles) == 2 and titles[1].startswith("[watcher] feed wire recovered")
        assert store.health_problems() == []
    alerts = store.alerts()
    assert [a.event for a in alerts] == ["unhealthy", "recovered"]
    assert all(a.delivered for a in alerts)


def test_stale_feed(loopback: LoopbackServer, store: Store) -> None:
    clock = Clock()
    loopback.route("/feed.xml", Reply(body=rss("a"), headers={"Content-Type": "text/xml"}))
    with Webhook() as hook:
        config = parse_config(
            f"""
            allow_private_networks: true
            defaults: {{interval: 1m, fetch_article: false, stale_after: 1d}}
            feeds: [{{name: wire, url: "{loopback.url("/feed.xml")}"}}]
            notifiers: {{ops: "{hook.url}"}}
            health: {{notify: [ops]}}
            """
        )
        with context(config, store, clock) as run:
            run(poll_feed, "wire")
            assert run(check_health) == []
            clock.now += timedelta(days=1, hours=1)
            run(poll_feed, "wire")
            (change,) = run(check_health)
            assert "no new article for 25 h" in change
            assert run(check_health) == []  # once
            loopback.route(
                "/feed.xml", Reply(body=rss("a", "b"), headers={"Content-Type": "text/xml"})
            )
            run(poll_feed, "wire")
            (change,) = run(check_health)
            assert "recovered" in change


WORDS = (
    *("ministry", "talks", "delegation", "capital", "residents", "bread", "fuel"),
    *("electricity", "agencies", "supplies", "diplomats", "statement", "discussions"),
    *("border", "convoy", "shelling", "envoy", "harbour", "council", "vote"),
)


def page(slug: str) -> str:
    """An article whose every paragraph is its own (no line recurs across articles, so none
    is learned as site furniture)."""
    rng = random.Random(slug)
    paragraphs = "".join(
        "<p>" + " ".join(rng.choice(WORDS) for _ in range(40)).capitalize() + ".</p>"
        for _ in range(3)
    )
    head = f"<html><head><title>{slug}</title></head>"
    return f"{head}<body><article><h1>{slug}</h1>{paragraphs}</article></body></html>"


def test_checks_failing_for_most_articles(loopback: LoopbackServer, store: Store) -> None:
    clock = Clock()
    slugs = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    items = "".join(
        f"<item><title>Story {s}</title><link>{loopback.url('/' + s)}</link></item>" for s in slugs
    )
    feed = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    )
    loopback.route("/feed.xml", Reply(body=feed, headers={"Content-Type": "text/xml"}))
    for slug in slugs:
        loopback.route(f"/{slug}", Reply(body=page(slug), headers={"Content-Type": "text/html"}))
    with Webhook() as hook:
        config = parse_config(
            f"""
            allow_private_networks: true
            defaults: {{interval: 1m, recheck: [{{until: 7d, every: 1m}}]}}
            feeds: [{{name: wire, url: "{loopback.url("/feed.xml")}"}}]
            notifiers: {{ops: "{hook.url}"}}
            health: {{notify: [ops], min_articles: 4, failing_share: 0.5}}
            """
        )
        with context(config, store, clock) as run:
            run(poll_feed, "wire")
            checked = run(check_articles, store.due_article_ids(clock()))
            assert [c.status for c in checked] == ["new"] * 6
            assert run(check_health) == []
            for slug in slugs[:4]:  # a redesign: most pages no longer extract
                loopback.route(f"/{slug}", Reply(body="<html><body>Subscribe</body></html>"))
            clock.now += timedelta(minutes=2)
            checked = run(check_articles, store.due_article_ids(clock()))
            assert sorted(c.status for c in checked) == ["failed"] * 4 + ["unchanged"] * 2
            (change,) = run(check_health)
            assert "checks failing for 4 of 6 articles" in change
            run(send)
            assert hook.titles()[0].startswith("[watcher] feed wire unhealthy: checks failing")


def test_problems_are_judged_from_facts() -> None:
    config = parse_config(
        """
        defaults: {stale_after: 2d}
        feeds: [{name: a, url: "http://a.example/f"}, {name: b, url: "http://b.example/f"}]
        health: {error_streak: 5, min_articles: 4, failing_share: 0.5}
        """
    )
    now = datetime(2026, 11, 29, tzinfo=UTC)

    def facts(feed: str, **changes: Any) -> FeedHealthFacts:
        base: dict[str, Any] = {
            "feed": feed,
            "url": f"http://{feed}.example/f",
            "error_streak": 0,
            "last_error": None,
            "disabled": False,
            "last_success_at": now,
            "newest_article_at": now,
            "checked": 10,
            "failing": 0,
        }
        return FeedHealthFacts(**{**base, **changes})

    def problems(*items: FeedHealthFacts) -> list[tuple[str, str]]:
        return [(p.feed, p.problem) for p in current_problems(config, items, now)]

    assert problems(facts("a"), facts("b")) == []
    assert problems(facts("a", error_streak=4, last_error="x")) == []
    assert problems(facts("a", error_streak=5, last_error="x")) == [("a", "errors")]
    assert problems(facts("a", disabled=True, error_streak=1)) == [("a", "errors")]
    assert problems(facts("a", newest_article_at=now - timedelta(days=3))) == [("a", "stale")]
    assert problems(facts("a", checked=10, failing=5)) == [("a", "checks")]
    assert problems(facts("a", checked=3, failing=3)) == []  # too few to judge
    assert problems(facts("gone", error_streak=99)) == []  # no longer configured
