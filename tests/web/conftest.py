"""A filled database (hostile text included) and an ASGI client on its web view."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from starlette.testclient import TestClient

from support.archive import Filled, fill
from watcher.storage.store import Store
from watcher.web.app import create_app

BASE_URL = "https://watcher.example.org"


@dataclass
class View:
    client: TestClient
    filled: Filled
    store: Store

    def get(self, path: str, **kwargs: object) -> object:
        return self.client.get(path, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def view(db_url: str) -> Iterator[View]:
    writer = Store.open(db_url)
    filled = fill(writer, hostile=True)
    writer.close()
    store = Store.open(db_url, create=False, read_only=True)
    app = create_app(store, base_url=BASE_URL)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield View(client, filled, store)
    store.close()
