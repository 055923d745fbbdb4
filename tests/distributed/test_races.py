"""Two ``watcher worker`` processes on a real PostgreSQL, both idle, and three check jobs of
one due article ready at the same moment (two deferred by the test without a queueing lock,
one by the workers' own scheduler): the job lock ``article:ID`` lets one run at a time, so
the page is never fetched twice at once, and the edit is one version with one alert.

Skipped unless WATCHER_TEST_POSTGRES_URL is set (the test gets a schema of its own).
"""

from __future__ import annotations

import asyncio
import random
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from support.desk import Concurrency, Desk, wait_caught_up, write_config
from support.newsroom import Newsroom
from support.processes import stop, wait_for
from support.receivers import Webhook
from watcher.config.loading import load_config
from watcher.distributed.app import build_app
from watcher.distributed.jobs import CHECK
from watcher.storage.engine import engine_url

pytestmark = pytest.mark.postgres
PAGE_HOLD = 0.5  # long enough for a second worker to take a job while the first fetches


def queued_checks(desk: Desk) -> int:
    with desk.engine.connect() as db:
        query = (
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = :task "
            "AND status IN ('todo', 'doing')"
        )
        return int(db.execute(text(query), {"task": CHECK}).scalar_one())


async def defer_racing_checks(config: Path, article_id: int, jobs: int) -> None:
    """``jobs`` checks of one article, all waiting at once: the job lock, no queueing lock."""
    app = build_app(load_config(config))
    async with app.open_async():
        task = app.tasks[CHECK].configure(lock=f"article:{article_id}")
        for _ in range(jobs):
            await task.defer_async(article_id=article_id)


def test_two_workers_on_one_due_article_make_one_version(
    tmp_path: Path, pg_url: str, room: Newsroom, hook: Webhook
) -> None:
    story = room.stories["s0"]
    busy = Concurrency(hold=PAGE_HOLD)
    room.server.route(story.path(), busy.wrap(lambda request: room._page("s0")))
    config = write_config(tmp_path, room, pg_url, hook.url, recheck="1h")  # no re-check of its own
    engine = create_engine(engine_url(pg_url))
    desk = Desk(room, engine, config, tmp_path / "logs", hook)
    try:
        with ExitStack() as stack:
            workers = [desk.start(stack) for _ in range(2)]
            wait_caught_up(desk, "the first versions")
            fetched = busy.calls
            desk.edit("s0", random.Random(3))
            with engine.begin() as db:
                article_id = db.execute(
                    text(
                        "UPDATE article SET next_check_at = now() AT TIME ZONE 'utc' "
                        "WHERE url = :url RETURNING id"
                    ),
                    {"url": room.url(story.path())},
                ).scalar_one()
            asyncio.run(defer_racing_checks(config, article_id, jobs=2))
            wait_for(
                lambda: busy.calls >= fetched + 2 and queued_checks(desk) == 0,
                60,
                "the racing checks",
                step=0.1,
            )
            wait_caught_up(desk, "the edit")
            assert [stop(worker) for worker in workers] == [0, 0]
        with engine.connect() as db:
            versions = db.execute(
                text(
                    "SELECT count(*), count(DISTINCT content_hash) FROM version "
                    "WHERE article_id = :id"
                ),
                {"id": article_id},
            ).one()
            alerts = db.execute(
                text("SELECT rule, event FROM alert WHERE article_id = :id ORDER BY id"),
                {"id": article_id},
            ).all()
    finally:
        engine.dispose()
    assert busy.most == 1, "the page was fetched by two checks at once"
    assert tuple(versions) == (2, 2)
    assert [tuple(a) for a in alerts] == [("all", "new"), ("edits", "changed")]
    desk.assert_consistent()
    assert desk.repeats() == 0
