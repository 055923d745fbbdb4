"""The web view shows an article's take-downs and moves: on its page (escaped) and in the API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from support.archive import START, fill
from watcher.records import CheckRecord, NewArticleEvent
from watcher.storage.store import Store
from watcher.web.app import create_app

HOSTILE_REASON = "HTTP 404 <script>alert(1)</script> on 2 checks in a row"


@pytest.fixture
def client(db_url: str) -> Iterator[tuple[TestClient, int]]:
    writer = Store.open(db_url)
    article_id = fill(writer, feeds=1, articles=1, versions=1).article_ids[0]
    later = START + timedelta(hours=1)
    moved = NewArticleEvent(
        "moved", "moved to http://news.example.org/new", url="http://news.example.org/new"
    )
    removed = NewArticleEvent("removed", HOSTILE_REASON, status=404)
    writer.record_check(article_id, CheckRecord(later, later, events=(moved,)))
    writer.record_check(article_id, CheckRecord(later, later, gone=True, events=(removed,)))
    writer.close()
    store = Store.open(db_url, create=False, read_only=True)
    with TestClient(create_app(store)) as test_client:
        yield test_client, article_id
    store.close()


def test_the_article_page_says_it_was_taken_down(client: tuple[TestClient, int]) -> None:
    test_client, article_id = client
    page = test_client.get(f"/articles/{article_id}")
    assert page.status_code == 200
    assert "Taken down: removed since" in page.text
    assert "&lt;script&gt;" in page.text and "<script>alert(1)" not in page.text
    assert "moved to http://news.example.org/new" in page.text


def test_the_api_gives_the_state_and_the_events(client: tuple[TestClient, int]) -> None:
    test_client, article_id = client
    body = test_client.get(f"/api/v1/articles/{article_id}").json()
    assert body["removed_at"] is not None and body["link"] == "http://news.example.org/new"
    assert [(e["kind"], e["status"]) for e in body["events"]] == [("moved", None), ("removed", 404)]
