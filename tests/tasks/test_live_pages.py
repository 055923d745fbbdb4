"""A live page on loopback: a blog that gains an entry on every check is recognised after a
few checks; its alerts go out as one digest per article when the digest period ends, while
an ordinary article's edit goes at once; when the blog calms down it is ordinary again."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest

from support.clock import Clock
from support.newsroom import Newsroom, make_story
from support.receivers import Webhook
from support.server import LoopbackServer, Reply
from watcher.config.loading import parse_config
from watcher.config.models import Config
from watcher.storage.store import Store
from watcher.tasks import PassSummary, open_context, run_pass


@pytest.fixture
def hook() -> Iterator[Webhook]:
    with Webhook() as receiver:
        yield receiver


def live_config(room: Newsroom, hook: Webhook) -> Config:
    return parse_config(
        f"""
        allow_private_networks: true
        defaults: {{recheck: [{{until: 7d, every: 1s}}]}}
        feeds: [{{name: loop, url: "{room.url("/rss.xml")}"}}]
        notifiers: {{desk: "{hook.url}"}}
        rules: [{{name: edits, events: [changed], notify: [desk]}}]
        live_pages: {{changes: 3, checks: 4, digest: 1h}}
        """
    )


class LiveBlog:
    """The blog's page: one more entry on every request while ``running``."""

    def __init__(self, room: Newsroom, slug: str) -> None:
        self.room, self.story = room, room.stories[slug]
        self.entries: list[str] = []
        self.running = True
        self.counter = itertools.count(1)
        room.server.route(self.story.path(), self._page)

    def _page(self, _request: object) -> Reply:
        if self.running:
            n = next(self.counter)
            self.entries.insert(0, f"Update {n}: the count at polling station {n} is now in.")
        body = self.room._render(self.story.title, [*self.entries, *self.story.paragraphs])
        return Reply(body=body, headers={"Content-Type": "text/html; charset=utf-8"})


def one_pass(config: Config, store: Store, clock: Clock) -> PassSummary:
    async def go() -> PassSummary:
        async with open_context(config, store, clock) as ctx:
            return await run_pass(ctx, recheck_all=True)

    summary = asyncio.run(go())
    clock.advance(minutes=1)
    return summary


def live_urls(config: Config, store: Store) -> set[str]:
    from watcher.cli.live import live_pages

    return {page["url"] for page in live_pages(config, store)}


def test_a_page_that_changes_on_every_check_is_live_and_digested(
    loopback: LoopbackServer, hook: Webhook, store: Store
) -> None:
    room = Newsroom(loopback).attach()
    room.add(make_story("results", "Election night live", seed=3))
    calm = room.add(make_story("museum", "Museum reopens", seed=4))
    blog = LiveBlog(room, "results")
    config, clock = live_config(room, hook), Clock()  # 12:00; the digest period ends at 13:00
    blog_url = room.url("/news/results.html")
    one_pass(config, store, clock)  # new: not a change
    one_pass(config, store, clock)
    one_pass(config, store, clock)  # two changes: not live yet, each alert its own message
    assert len(hook.received) == 2 and live_urls(config, store) == set()
    for _ in range(3):  # the third change makes it live: these wait for its digest
        one_pass(config, store, clock)
    assert live_urls(config, store) == {blog_url}
    assert len(hook.received) == 2
    room.edit("museum", paragraphs=[*calm.paragraphs, "The east wing stays closed until May."])
    one_pass(config, store, clock)  # an ordinary article's edit still goes at once
    assert len(hook.received) == 3 and "Museum reopens" in hook.titles()[-1]

    clock.advance(hours=1)  # the period is over: one digest of the blog's four alerts
    one_pass(config, store, clock)  # (this pass's change waits for the next period's)
    digest = hook.received[3]
    assert digest["title"] == "[watcher] live page, 4 updates: Election night live"
    assert "Live page (it changes on most checks" in digest["message"]
    assert len(hook.received) == 4 and len(hook.alert_ids()) == 3 + 4

    blog.running = False  # calm: after two checks without a change it is ordinary again
    one_pass(config, store, clock)
    one_pass(config, store, clock)
    assert live_urls(config, store) == set()
    blog.running = True
    one_pass(config, store, clock)  # its next edit is one message, sent at once
    assert len(hook.received) == 5
    assert hook.titles()[-1].startswith("[watcher] edits (substance): Election night live")
    article = store.find_article(blog_url)
    assert article is not None and article.recent_checks.endswith("cc--c")
    blog.running = False
    clock.advance(hours=1)
    one_pass(config, store, clock)  # the change held in the last period: alone, one message
    assert len(hook.received) == 6
    assert sorted(hook.alert_ids()) == sorted(a.id for a in store.alerts())
