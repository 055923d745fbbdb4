"""Every route of the web view through an ASGI client, on SQLite and PostgreSQL: what each
page shows, 404 for anything unknown, escaping of hostile article text, the headers."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from support.archive import HOSTILE
from watcher.web.security import CONTENT_SECURITY_POLICY

from .conftest import View


def routes(view: View) -> list[str]:
    a = view.filled.article_ids[0]
    return [
        "/",
        "/feeds/desk-0",
        f"/articles/{a}",
        f"/articles/{a}/diff/1/3",
        f"/articles/{a}/diff/3/1",
        f"/articles/{a}/diff/1/2?view=split",
        f"/articles/{a}/versions/2",
        "/alerts",
        "/alerts?state=new",
        "/alerts?rule=edits",
        "/search?q=talks",
        "/search",
    ]


class Markup(HTMLParser):
    """What a browser would run: elements and attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]


def assert_inert(html: str) -> None:
    parsed = Markup()
    parsed.feed(html)
    assert "script" not in parsed.tags and "img" not in parsed.tags, parsed.tags
    assert not [name for name, _ in parsed.attributes if name.startswith("on")]
    hrefs = [value for name, value in parsed.attributes if name in ("href", "src", "action")]
    assert not [h for h in hrefs if h.strip().lower().startswith(("javascript:", "data:"))]


def test_every_page_answers_escaped_with_strict_headers(view: View) -> None:
    for path in routes(view):
        reply = view.client.get(path)
        assert reply.status_code == 200, (path, reply.text[:300])
        assert reply.headers["content-type"].startswith("text/html")
        assert reply.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["x-frame-options"] == "DENY"
        assert_inert(reply.text)


def test_hostile_text_is_shown_as_text(view: View) -> None:
    a = view.filled.article_ids[0]
    for path in (f"/articles/{a}/versions/1", f"/articles/{a}/diff/1/2", f"/articles/{a}"):
        page = view.client.get(path).text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page, path
    # The article's link is javascript: in its feed: shown, never a link.
    page = view.client.get(f"/articles/{a}").text
    assert 'href="#"' in page and "javascript:alert(4)" not in page.split('href="#"')[0][-200:]


def test_the_diff_page_has_the_facts_marks_and_neighbours(view: View) -> None:
    a = view.filled.article_ids[0]
    page = view.client.get(f"/articles/{a}/diff/2/3").text
    assert "Headline" in page and "Numbers" in page and "Quotes" in page
    assert "<del>12</del>" in page and "<ins>13</ins>" in page
    assert f'href="/articles/{a}/diff/1/2" rel="prev"' in page
    assert 'rel="next"' not in page  # 3 is the newest
    assert f'href="/articles/{a}/diff/2/3?view=split"' in page
    split = view.client.get(f"/articles/{a}/diff/2/3?view=split").text
    assert '<table class="split">' in split and "<del>" in split and "<ins>" in split


def test_the_timeline_lists_every_version(view: View) -> None:
    a = view.filled.article_ids[0]
    page = view.client.get(f"/articles/{a}").text
    for number in (1, 2, 3):
        assert f'href="/articles/{a}/versions/{number}"' in page
    assert "on the page now" in page and "from the page" in page and "words" in page
    picked = view.client.get(f"/articles/{a}/compare?from=1&to=3", follow_redirects=False)
    assert picked.status_code == 303 and picked.headers["location"] == f"/articles/{a}/diff/1/3"


def test_overview_lists_latest_changes_first_and_feeds(view: View) -> None:
    page = view.client.get("/").text
    newest = view.filled.article_ids[-1]
    assert page.index(f"/articles/{newest}/diff/2/3") < page.index(
        f"/articles/{view.filled.article_ids[0]}/diff/2/3"
    )
    assert "desk-0" in page and "desk-1" in page


def test_search_finds_by_headline_and_url(view: View) -> None:
    assert "/articles/" in view.client.get("/search?q=TALKS resume").text
    found = view.client.get("/search?q=desk-1/2").text
    assert f'/articles/{view.filled.article_ids[5]}"' in found
    assert "No articles." in view.client.get("/search?q=nothing-like-this").text
    assert "No articles." in view.client.get("/search?q=%25").text  # LIKE wildcards are text


@pytest.mark.parametrize(
    "path",
    [
        "/articles/999999",
        "/articles/abc",
        "/articles/0",
        "/articles/99999999999999999999999",
        "/articles/1/diff/1/99",
        "/articles/1/diff/x/2",
        "/articles/1/versions/0",
        "/articles/1/compare?from=1",
        "/feeds/nope",
        "/feeds/nope/changes.atom",
        "/rules/nope/changes.atom",
        "/alerts?state=lost",
        "/alerts?before=abc",
        "/no/such/page",
    ],
)
def test_unknown_things_are_a_404_page(view: View, path: str) -> None:
    reply = view.client.get(path)
    assert reply.status_code == 404, reply.text[:300]
    assert "Not found" in reply.text and reply.headers["x-frame-options"] == "DENY"


def test_the_web_store_cannot_write(view: View) -> None:
    with pytest.raises(DBAPIError), view.store.engine.begin() as connection:
        connection.execute(text("UPDATE feed SET title = 'x'"))


def test_api_alerts_are_watcher_alerts_json(view: View) -> None:
    from watcher.cli.reading import alert_json

    page = view.client.get("/api/v1/alerts?limit=2").json()
    newest = view.store.alert_page(limit=1)[0]
    expected = json.loads(json.dumps(alert_json(newest, "https://watcher.example.org")))
    assert page["items"][0] == expected
    assert expected["diff_url"] == (
        f"https://watcher.example.org/articles/{newest.article_id}/diff/2/3"
    )
    following = view.client.get(f"/api/v1/alerts?limit=2&cursor={page['next_cursor']}").json()
    assert following["items"][0]["id"] < page["items"][-1]["id"]


def test_api_pages_through_everything(view: View) -> None:
    seen: list[int] = []
    cursor = ""
    while True:
        page = view.client.get(f"/api/v1/changes?limit=4&cursor={cursor}").json()
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == len(view.filled.article_ids) * 2
    a = view.filled.article_ids[0]
    diff = view.client.get(f"/api/v1/articles/{a}/diff/1/2").json()
    assert "11" in diff["numbers_removed"] and "12" in diff["numbers_added"]
    assert HOSTILE in "".join(text for _, text in diff["ops"])  # JSON carries text as text
    assert view.client.get("/api/v1/articles/999999").json() == {"error": "no article 999999"}
    assert view.client.get("/api/v1/alerts?limit=0").status_code == 400
