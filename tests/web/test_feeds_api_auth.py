"""Atom feeds (feedparser, conditional GET, escaping), the API against its own OpenAPI
document (schemathesis), the password in front, and the config of the web view."""

from __future__ import annotations

import base64
import html
import os
from dataclasses import replace
from datetime import UTC, datetime

import feedparser
import pytest
from starlette.testclient import TestClient

from watcher.config.loading import parse_config
from watcher.delivery.render import Renderer, sample_alert
from watcher.errors import ConfigError
from watcher.web.app import create_app

from .conftest import BASE_URL, View
from .test_pages import assert_inert


@pytest.mark.parametrize(
    "path", ["/changes.atom", "/feeds/desk-1/changes.atom", "/rules/edits/changes.atom"]
)
def test_atom_feeds_parse_link_to_diffs_and_answer_304(view: View, path: str) -> None:
    reply = view.client.get(path)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith(
        "application/atom+xml"
    )
    parsed = feedparser.parse(reply.content)
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.entries and all(
        e.link.startswith(BASE_URL + "/articles/") and "/diff/" in e.link for e in parsed.entries
    )
    first = parsed.entries[0]
    raw = first.content[0].value
    assert "<del>" in raw and "<ins>" in raw
    # The raw XML's content, as a reader unescapes it, has no live markup from the article.
    unescaped = reply.text.split('<content type="html">', 1)[1].split("</content>", 1)[0]
    assert_inert(html.unescape(unescaped))
    tag = reply.headers["etag"]
    again = view.client.get(path, headers={"if-none-match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    weak = view.client.get(path, headers={"if-none-match": f'"other", W/{tag}'})
    assert weak.status_code == 304
    assert view.client.get(path, headers={"if-none-match": '"stale"'}).status_code == 200


def test_a_new_change_changes_the_etag(view: View, db_url: str) -> None:
    from support.archive import _store_version
    from watcher.storage.store import Store

    tag = view.client.get("/changes.atom").headers["etag"]
    writer = Store.open(db_url)
    _store_version(writer, view.filled.article_ids[0], "desk-0", 0, 4, 50, False, "edits")
    writer.close()
    reply = view.client.get("/changes.atom", headers={"if-none-match": tag})
    assert reply.status_code == 200 and reply.headers["etag"] != tag
    assert "/diff/3/4" in reply.text


def test_a_token_guards_everything_but_healthz(view: View) -> None:
    token = "s3cret-token-for-tests"
    config = _config("web: {listen: '0.0.0.0:8470', auth: {token: '${WEB_TOKEN}'}}", token)
    assert config.web is not None and config.web.auth is not None
    app = create_app(view.store, auth=config.web.auth)
    with TestClient(app) as client:
        refused = client.get("/")
        assert refused.status_code == 401 and "Bearer" in refused.headers["www-authenticate"]
        assert refused.headers["x-frame-options"] == "DENY"
        assert client.get("/", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/", headers={"authorization": f"Bearer {token}"}).status_code == 200
        assert client.get("/api/v1/feeds").status_code == 401
        assert client.get("/healthz").status_code == 404  # open, but not served without probes


def test_basic_auth(view: View) -> None:
    config = _config(
        "web: {listen: '[::]:8470', auth: {user: desk, password: '${WEB_TOKEN}'}}",
        "long-password-1",
    )
    assert config.web is not None
    with TestClient(create_app(view.store, auth=config.web.auth)) as client:
        good = base64.b64encode(b"desk:long-password-1").decode()
        bad = base64.b64encode(b"other:long-password-1").decode()
        assert client.get("/", headers={"authorization": f"Basic {good}"}).status_code == 200
        assert client.get("/", headers={"authorization": f"Basic {bad}"}).status_code == 401
        assert client.get("/", headers={"authorization": "Basic !!"}).status_code == 401


def _config(web: str, secret: str) -> object:
    os.environ["WEB_TOKEN"] = secret
    try:
        return parse_config(web + "\n", "w.yaml")
    finally:
        del os.environ["WEB_TOKEN"]


@pytest.mark.parametrize(
    ("web", "problem"),
    [
        ("web: {listen: '0.0.0.0:8470'}", "needs `auth`"),
        ("web: {listen: '127.0.0.1:8470', auth: {token: 'written-in-the-file'}}", "${VAR}"),
        ("web: {base_url: 'ftp://x'}", "http(s) URL"),
        ("web: {auth: {token: '${WEB_TOKEN}', user: a}}", "not both"),
        ("web: {auth: {user: a}}", "needs `token`"),
    ],
)
def test_web_config_mistakes_are_named(web: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(web, "a-long-enough-token")
    assert problem in str(caught.value) and "w.yaml:1" in str(caught.value)


def test_messages_link_to_the_diff_with_base_url() -> None:
    alert = replace(sample_alert(datetime(2024, 5, 1, tzinfo=UTC)), article_id=7)
    message = Renderer(base_url="https://w.example.org/").alert(alert)
    link = "https://w.example.org/articles/7/diff/1/2"
    assert link in message.text and f'href="{link}"' in message.html
    assert f"({link})" in message.markdown
    plain = Renderer().alert(alert)
    assert "watcher diff" in plain.text and "/articles/" not in plain.text
    digest = Renderer(base_url="https://w.example.org").digest([alert, alert])
    assert link in digest.text and link in digest.markdown


def test_the_migration_adding_the_alert_list_indexes(db_url: str) -> None:
    from sqlalchemy import inspect, text

    from watcher.storage.migrations import MIGRATIONS
    from watcher.storage.store import Store

    add_indexes = next(m for m in MIGRATIONS if m.__name__ == "_add_alert_list_indexes")
    store = Store.open(db_url)
    with store.engine.begin() as connection:
        for name in ("ix_alert_rule", "ix_alert_feed"):
            connection.execute(text(f"DROP INDEX {name}"))
        add_indexes(connection)
        add_indexes(connection)  # and again: where migration 2 made them already
        names = {index["name"] for index in inspect(connection).get_indexes("alert")}
    store.close()
    assert {"ix_alert_rule", "ix_alert_feed"} <= names


@pytest.mark.parametrize(
    "address",
    ["/api/v1/alerts?rule=%00", "/search?q=a%00b", "/feeds/a%00b", "/api/v1/articles?q=%00"],
)
def test_a_nul_character_in_the_address_is_a_400_not_a_500(view: View, address: str) -> None:
    answer = view.client.get(address)
    assert answer.status_code == 400, answer.text
