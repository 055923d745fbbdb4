"""Take-downs and moves end to end on loopback: the newsroom's story answers 404, 410, a
redirect to the front page, a 301 to a new URL, and comes back; the events are recorded,
alerted at a real webhook receiver and shown by `watcher history`. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from support.newsroom import Newsroom, make_story
from support.receivers import Webhook
from support.server import LoopbackServer, Reply
from watcher.cli.commands import main
from watcher.config.loading import parse_config
from watcher.config.models import Config
from watcher.records import ArticleState
from watcher.storage.store import Store
from watcher.tasks import PassSummary, open_context, run_pass

SLUG = "port-strike"
NEW_PATH = "/news/port-strike-ends.html"


@pytest.fixture
def hook() -> Iterator[Webhook]:
    with Webhook() as receiver:
        yield receiver


@pytest.fixture
def newsroom(loopback: LoopbackServer) -> Newsroom:
    room = Newsroom(loopback).attach()
    room.add(make_story(SLUG, "Port strike enters second week", seed=4))
    room.add(make_story("floods", "Floods close the valley road", seed=5))
    loopback.route("/", Reply(body=_front_page(), headers={"Content-Type": "text/html"}))
    return room


def _front_page() -> str:
    teasers = "".join(
        f"<article><h2><a href='/news/{i}.html'>Headline number {i} of the day</a></h2>"
        f"<p>A teaser paragraph for story {i}, long enough to read as text on a page.</p>"
        "</article>"
        for i in range(12)
    )
    return f"<html><head><title>Loopback News</title></head><body>{teasers}</body></html>"


def takedown_config(newsroom: Newsroom, hook: Webhook) -> Config:
    return parse_config(
        f"""
        allow_private_networks: true
        defaults: {{interval: 1m, recheck: [{{until: 7d, every: 1s}}]}}
        feeds: [{{name: news, url: "{newsroom.url("/rss.xml")}"}}]
        notifiers: {{desk: "{hook.url}"}}
        rules:
          - {{name: gone, events: [removed, restored], notify: [desk]}}
          - {{name: strikes, keywords: [port strike], events: [removed], notify: [desk]}}
          - {{name: edits, events: [changed], notify: [desk]}}
        """
    )


def one_pass(config: Config, store: Store) -> PassSummary:
    async def go() -> PassSummary:
        async with open_context(config, store) as ctx:
            return await run_pass(ctx, recheck_all=True)

    return asyncio.run(go())


def story(store: Store, newsroom: Newsroom) -> ArticleState:
    article = store.find_article(newsroom.url(f"/news/{SLUG}.html"))
    assert article is not None
    return article


def check_of(summary: PassSummary, newsroom: Newsroom) -> tuple[str, tuple[str, ...]]:
    (check,) = [c for c in summary.checks if SLUG in c.url]
    return check.status, check.events


def events(store: Store, newsroom: Newsroom) -> list[str]:
    return [e.kind for e in store.article_events(story(store, newsroom).id)]


def serve(newsroom: Newsroom, reply: Reply | None) -> None:
    """The story's page answers ``reply`` (None: the story again)."""
    path = f"/news/{SLUG}.html"
    if reply is None:
        newsroom.server.route(path, lambda _r: newsroom._page(SLUG))
    else:
        newsroom.server.route(path, reply)


def history(db_url: str, tmp_path: Path, url: str, *args: str) -> str:
    config = tmp_path / "watcher.yaml"
    config.write_text(f'database: "{db_url}"\n')
    result = CliRunner().invoke(main, ["-c", str(config), "history", url, *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_404_twice_is_removed_alerted_once_and_restored(
    newsroom: Newsroom, store: Store, hook: Webhook, db_url: str, tmp_path: Path
) -> None:
    config = takedown_config(newsroom, hook)
    one_pass(config, store)
    serve(newsroom, Reply(status=404, body="not here"))
    assert check_of(one_pass(config, store), newsroom) == ("failed", ())  # one 404: not yet
    assert story(store, newsroom).gone_checks == 1 and events(store, newsroom) == []
    assert check_of(one_pass(config, store), newsroom) == ("removed", ("removed",))
    assert check_of(one_pass(config, store), newsroom) == ("removed", ())  # still gone: quiet
    article = story(store, newsroom)
    assert article.removed and article.failures == 0 and article.next_check_at is not None
    removed = [a for a in store.alerts() if a.event == "removed"]
    assert sorted(a.rule for a in removed) == ["gone", "strikes"]
    assert all("404" in a.detail["reason"] for a in removed)
    assert removed[0].detail["removed"] and removed[0].version == 1
    titles = [t for t in hook.titles() if "REMOVED" in t]
    assert len(titles) == 1 and "Port strike" in titles[0]  # two rules, one message

    serve(newsroom, None)  # it comes back, unchanged
    summary = one_pass(config, store)
    assert check_of(summary, newsroom) == ("unchanged", ("restored",))
    assert not story(store, newsroom).removed
    assert [a.rule for a in store.alerts() if a.event == "restored"] == ["gone"]
    assert any("RESTORED" in t for t in hook.titles())
    assert store.counts()["versions"] == 2  # no version for a take-down or its return
    assert check_of(one_pass(config, store), newsroom) == ("unchanged", ())

    url = newsroom.url(f"/news/{SLUG}.html")
    shown = history(db_url, tmp_path, url)
    assert "removed: HTTP 404 Not Found on 2 checks in a row" in shown
    assert "restored: the article is back" in shown
    data = json.loads(history(db_url, tmp_path, url, "--json"))
    assert [e["kind"] for e in data["events"]] == ["removed", "restored"]
    assert data["events"][0]["status"] == 404 and data["article"]["removed_at"] is None


def test_a_single_gone_answer_or_a_server_error_is_no_removal(
    newsroom: Newsroom, store: Store, hook: Webhook
) -> None:
    config = takedown_config(newsroom, hook)
    one_pass(config, store)
    serve(newsroom, Reply(status=410))
    assert check_of(one_pass(config, store), newsroom) == ("failed", ())
    serve(newsroom, None)
    one_pass(config, store)
    assert story(store, newsroom).gone_checks == 0  # a good answer resets the count
    for status in (503, 500):  # server errors neither count nor reset
        serve(newsroom, Reply(status=status))
        assert check_of(one_pass(config, store), newsroom) == ("failed", ())
    assert story(store, newsroom).gone_checks == 0
    assert events(store, newsroom) == []
    serve(newsroom, Reply(status=410))
    one_pass(config, store)
    serve(newsroom, Reply(status=503))
    one_pass(config, store)
    serve(newsroom, Reply(status=404))  # 410, 503, 404: gone twice in a row all the same
    assert check_of(one_pass(config, store), newsroom) == ("removed", ("removed",))
    assert not [a for a in store.alerts() if a.event not in ("new", "removed")]


def test_a_redirect_to_the_front_page_is_a_take_down(
    newsroom: Newsroom, store: Store, hook: Webhook
) -> None:
    config = takedown_config(newsroom, hook)
    one_pass(config, store)
    serve(newsroom, Reply(status=302, headers={"Location": "/"}))
    assert check_of(one_pass(config, store), newsroom) == ("failed", ())
    assert check_of(one_pass(config, store), newsroom) == ("removed", ("removed",))
    (event,) = store.article_events(story(store, newsroom).id)
    assert "front page" in event.reason and event.status is None
    assert store.counts()["versions"] == 2  # the front page's text is not a version
    assert not [a for a in store.alerts() if a.event == "changed"]


def test_a_permanent_redirect_is_a_move_not_an_edit(
    newsroom: Newsroom, store: Store, hook: Webhook, db_url: str, tmp_path: Path
) -> None:
    config = takedown_config(newsroom, hook)
    one_pass(config, store)
    newsroom.server.route(NEW_PATH, lambda _r: newsroom._page(SLUG))
    serve(newsroom, Reply(status=301, headers={"Location": NEW_PATH}))
    assert check_of(one_pass(config, store), newsroom) == ("unchanged", ("moved",))
    article = story(store, newsroom)
    assert article.link == newsroom.url(NEW_PATH)
    assert (store.counts()["articles"], store.counts()["versions"]) == (2, 2)
    assert store.alerts() == []  # no rule fires on new articles; a move raises nothing

    # The feed still names the old URL: fetched at the new one, no move again.
    old_requests = len(newsroom.server.requests_to(f"/news/{SLUG}.html"))
    assert check_of(one_pass(config, store), newsroom) == ("unchanged", ())
    assert len(newsroom.server.requests_to(f"/news/{SLUG}.html")) == old_requests
    assert story(store, newsroom).link == newsroom.url(NEW_PATH)

    # The feed names the new URL (and a new guid): the same article, not a new one.
    newsroom.stories[SLUG].slug = "port-strike-ends"
    one_pass(config, store)
    assert store.counts()["articles"] == 2
    assert store.find_article(newsroom.url(NEW_PATH)) == store.find_article(
        newsroom.url(f"/news/{SLUG}.html")
    )

    # An edit at the new URL is an edit as usual.
    paragraphs = newsroom.stories[SLUG].paragraphs
    newsroom.edit(SLUG, paragraphs=[*paragraphs, "Dockers voted to return to work on Monday."])
    assert check_of(one_pass(config, store), newsroom)[0] == "changed"
    assert [a.rule for a in store.alerts() if a.event == "changed"] == ["edits"]
    assert f"moved to {newsroom.url(NEW_PATH)}" in history(db_url, tmp_path, newsroom.url(NEW_PATH))


def test_a_removed_article_that_comes_back_moved_and_edited(
    newsroom: Newsroom, store: Store, hook: Webhook
) -> None:
    config = takedown_config(newsroom, hook)
    one_pass(config, store)
    serve(newsroom, Reply(status=404))
    one_pass(config, store)
    one_pass(config, store)
    assert story(store, newsroom).removed
    paragraphs = newsroom.stories[SLUG].paragraphs
    newsroom.edit(SLUG, paragraphs=[*paragraphs, "An editor's note was added to the story."])
    newsroom.server.route(NEW_PATH, lambda _r: newsroom._page(SLUG))
    serve(newsroom, Reply(status=308, headers={"Location": NEW_PATH}))
    summary = one_pass(config, store)
    assert check_of(summary, newsroom) == ("changed", ("restored", "moved"))
    assert events(store, newsroom) == ["removed", "restored", "moved"]
    by_event = sorted((a.event, a.rule) for a in store.alerts() if a.event != "new")
    assert by_event == [("changed", "edits"), ("removed", "gone"), ("removed", "strikes"),
                        ("restored", "gone")]  # fmt: skip
