"""The web view's article page after a revert: its latest change is the rollback that is
live (the version replaced → the one gone back to); each version and alert shows its class."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from starlette.testclient import TestClient

from support.archive import START, fill
from watcher.records import CheckRecord, NewAlert, NewVersion
from watcher.storage.store import Store
from watcher.web.app import create_app


def test_the_latest_change_after_a_revert_is_the_rollback(db_url: str) -> None:
    writer = Store.open(db_url)
    article_id = fill(writer, feeds=1, articles=1, versions=3).article_ids[0]
    when = START + timedelta(days=1)
    writer.record_check(article_id, CheckRecord(when, when + timedelta(hours=1), seen_again=2))
    article = writer.article(article_id)
    assert (article.current_version, article.previous_version) == (2, 3)
    writer.close()
    store = Store.open(db_url, create=False, read_only=True)
    try:
        with TestClient(create_app(store)) as client:
            page = client.get(f"/articles/{article_id}").text
            assert f'<a href="/articles/{article_id}/diff/3/2">The latest change</a>' in page
            assert '<option value="3" selected>' in page.split('name="to"')[0]
            assert '<option value="2" selected>' in page.split('name="to"')[1]
    finally:
        store.close()


def test_the_timeline_shows_each_versions_class(db_url: str) -> None:
    writer = Store.open(db_url)
    article_id = fill(writer, feeds=1, articles=1, versions=1).article_ids[0]
    first = writer.versions(article_id)[0]
    when = START + timedelta(days=1)
    text = first.text + " More."
    digest = hashlib.sha1(text.encode()).hexdigest()
    version = NewVersion(first.title, text, digest, "page", classes=("substance", "headline"))
    detail = {"classes": ["substance", "headline"], "previous": {"version": 1}}
    alert = NewAlert("edits", "changed", "desk-0", (), detail)
    writer.record_check(article_id, CheckRecord(when, None, version=version, alerts=(alert,)))
    writer.close()
    store = Store.open(db_url, create=False, read_only=True)
    try:
        with TestClient(create_app(store)) as client:
            page = client.get(f"/articles/{article_id}").text
            assert '<span class="tag">substance, headline</span>' in page
            api = client.get(f"/api/v1/articles/{article_id}").json()
            assert [v["classes"] for v in api["versions"]] == [[], ["substance", "headline"]]
            assert "changed (substance, headline):" in client.get("/alerts").text
            (listed,) = client.get("/api/v1/alerts").json()["items"]
            assert listed["classes"] == ["substance", "headline"]
    finally:
        store.close()

