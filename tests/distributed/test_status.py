"""``watcher status --json`` in the queue mode: the top-level ``workers`` list (each with its
``processed`` count) and the queue by state, from jobs put in each state through
Procrastinate's own manager: waiting (counted by task), failed, and under way on a worker
that is gone (stalled).

Skipped unless WATCHER_TEST_POSTGRES_URL is set (the test gets a schema of its own).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from procrastinate.jobs import Status

from support.desk import write_config
from support.newsroom import Newsroom
from support.processes import cli
from support.receivers import Webhook
from watcher.clock import utc_now
from watcher.config.loading import load_config
from watcher.distributed.app import build_app
from watcher.distributed.jobs import CHECK, POLL
from watcher.storage.store import Store

pytestmark = pytest.mark.postgres


async def jobs_in_every_state(config: Path) -> None:
    app = build_app(load_config(config))
    async with app.open_async():
        manager = app.job_manager
        for article in (2, 3, 1):
            await app.tasks[CHECK].defer_async(article_id=article)
        await app.tasks[POLL].defer_async(feed="rss")
        worker = await manager.register_worker()
        failing = await manager.fetch_job(queues=None, worker_id=worker)
        assert failing is not None and failing.task_kwargs == {"article_id": 2}
        await manager.finish_job(failing, status=Status.FAILED, delete_job=False)
        stalled = await manager.fetch_job(queues=None, worker_id=worker)
        assert stalled is not None and stalled.task_kwargs == {"article_id": 3}
        await manager.unregister_worker(worker)  # gone with its job under way


def test_status_json_shows_workers_and_the_queue(
    tmp_path: Path, pg_url: str, room: Newsroom, hook: Webhook
) -> None:
    config = write_config(tmp_path, room, pg_url, hook.url)
    store = Store.open(pg_url)  # watcher's migrations make the queue's schema too
    now = utc_now()
    store.register_worker("desk-1:42:abc", host="desk-1", pid=42, concurrency=4, now=now)
    store.worker_seen("desk-1:42:abc", now, processed=7, failed=1, stopped=False)
    store.close()
    asyncio.run(jobs_in_every_state(config))
    report = json.loads(cli(config, "status", "--json").stdout)
    [worker] = report["workers"]
    assert {k: worker[k] for k in ("id", "host", "processed", "failed", "state")} == {
        "id": "desk-1:42:abc",
        "host": "desk-1",
        "processed": 7,
        "failed": 1,
        "state": "running",
    }
    assert worker["started"] and worker["last_seen"]
    assert report["queue"] == {
        "todo": {CHECK: 1, POLL: 1},
        "doing": 1,
        "stalled": 1,
        "failed": 1,
    }
    table = cli(config, "status").stdout
    assert "desk-1:42:abc" in table
    assert f"queue: 1 {CHECK}, 1 {POLL}; 1 under way, 1 stalled, 1 failed" in table
