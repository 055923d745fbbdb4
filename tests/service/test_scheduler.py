"""The scheduler adapter: jobs from the config, and a re-check job that keeps up."""

from __future__ import annotations

import asyncio

from support.server import LoopbackServer, Reply
from watcher.config.loading import parse_config
from watcher.service.scheduler import RECHECK_JOB, _check_due_then_send, build_scheduler
from watcher.storage.store import Store
from watcher.tasks import open_context, poll_feed


def test_a_backlog_is_claimed_batch_after_batch_not_one_batch_a_tick(
    loopback: LoopbackServer, store: Store
) -> None:
    items = "".join(
        f"<item><title>Story {i}</title><guid>s{i}</guid><description>Text {i}.</description>"
        "</item>"
        for i in range(7)
    )
    feed = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    )
    loopback.route("/feed.xml", Reply(body=feed, headers={"Content-Type": "text/xml"}))
    config = parse_config(
        f"""
        defaults: {{fetch_article: false}}
        feeds: [{{name: wire, url: "{loopback.url("/feed.xml")}"}}]
        """
    )

    async def scenario() -> None:
        async with open_context(config, store) as ctx:
            scheduler = build_scheduler(ctx, recheck_batch=2)
            assert scheduler.get_job(RECHECK_JOB) is not None
            await poll_feed(ctx, "wire")
            await _check_due_then_send(ctx, scheduler, 2)  # one run of the job

    asyncio.run(scenario())
    assert store.counts()["versions"] == 7
