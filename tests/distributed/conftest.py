"""Fixtures of the scale-out tests: a PostgreSQL schema of the test's own, the newsroom, a
webhook receiver and the desk over them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from support.db import database_url
from support.desk import STORIES, Desk, write_config
from support.newsroom import Newsroom, make_story
from support.receivers import Webhook
from support.server import LoopbackServer
from watcher.storage.engine import engine_url


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    with database_url("postgres", tmp_path) as url:
        yield url


@pytest.fixture
def room() -> Iterator[Newsroom]:
    with LoopbackServer() as server:
        newsroom = Newsroom(server).attach()
        for i in range(STORIES):
            newsroom.add(make_story(f"s{i}", f"Story {i} of the desk", seed=i))
        yield newsroom


@pytest.fixture
def hook() -> Iterator[Webhook]:
    receiver = Webhook()
    yield receiver
    receiver.close()


@pytest.fixture
def desk(tmp_path: Path, pg_url: str, room: Newsroom, hook: Webhook) -> Iterator[Desk]:
    config = write_config(tmp_path, room, pg_url, hook.url)
    engine = create_engine(engine_url(pg_url))
    yield Desk(room, engine, config, tmp_path / "logs", hook)
    engine.dispose()
