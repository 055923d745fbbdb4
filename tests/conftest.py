"""Fixtures shared by all tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.db import database_url
from support.server import LoopbackServer
from watcher.storage.store import Store


@pytest.fixture(scope="session", autouse=True)
def _cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """What watcher caches (apprise's scheme map) goes to a directory of the session's,
    for in-process commands and subprocesses alike, not the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache-home")))
        yield


@pytest.fixture(autouse=True)
def _fresh_resolutions() -> Iterator[None]:
    """Each test starts with no host approved by the SSRF guard (kept a minute otherwise)."""
    from watcher.pipeline.transport import RESOLVED

    RESOLVED.clear()
    yield
    RESOLVED.clear()


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    """A started HTTP server on 127.0.0.1; routes are added by the test."""
    with LoopbackServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database URL: SQLite, and PostgreSQL when WATCHER_TEST_POSTGRES_URL is set."""
    with database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A store opened on ``db_url`` (SQLite, and PostgreSQL when configured)."""
    opened = Store.open(db_url)
    yield opened
    opened.close()
