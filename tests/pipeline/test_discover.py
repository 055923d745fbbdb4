"""``watcher discover``: feeds found on loopback pages, through the real command."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from support.server import LoopbackServer, Reply
from watcher.cli.commands import main
from watcher.pipeline.discover import feed_links

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Desk: World</title>
<item><title>One</title><link>https://news.example.org/one</link></item>
<item><title>Two</title><link>https://news.example.org/two</link></item>
</channel></rss>"""
ATOM = """<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">
<title>Desk Atom</title><id>urn:x</id><updated>2024-01-01T00:00:00Z</updated>
<entry><title>A</title><id>urn:a</id><link href="https://news.example.org/a"/>
<updated>2024-01-01T00:00:00Z</updated></entry></feed>"""


def page(links: str) -> str:
    return f"<!doctype html><html><head><title>Desk</title>{links}</head><body>hi</body></html>"


def discover(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["discover", *args])
    return result.exit_code, result.output


def test_lists_link_alternates_then_conventional_paths(loopback: LoopbackServer) -> None:
    loopback.route(
        "/",
        Reply(
            body=page(
                '<link rel="alternate" type="application/rss+xml" title="World" href="/world.rss">'
                '<link rel="alternate" type="application/atom+xml" href="atom">'
                '<link rel="alternate" type="application/rss+xml" href="/broken.rss">'
                '<link rel="stylesheet" type="text/css" href="/style.css">'
            ),
            headers={"Content-Type": "text/html; charset=utf-8"},
        ),
    )
    loopback.route("/world.rss", Reply(body=RSS, headers={"Content-Type": "application/rss+xml"}))
    loopback.route("/atom", Reply(body=ATOM, headers={"Content-Type": "application/atom+xml"}))
    loopback.route("/broken.rss", Reply(status=500, body="no"))
    loopback.route("/feed.json", Reply(
        body='{"version": "https://jsonfeed.org/version/1.1", "title": "Desk JSON", "items": '
             '[{"id": "1", "url": "https://news.example.org/j"}]}',
        headers={"Content-Type": "application/feed+json"},
    ))
    code, output = discover(loopback.url("/"), "--allow-private-networks")
    assert code == 0, output
    pasted = yaml.safe_load(output)["feeds"]
    assert [f["url"] for f in pasted] == [
        loopback.url("/world.rss"), loopback.url("/atom"), loopback.url("/feed.json")
    ]
    assert [f["name"] for f in pasted] == ["desk-world", "desk-atom", "desk-json"]
    assert "# Desk: World, 2 entries" in output and "Desk Atom, 1 entry" in output
    assert not loopback.requests_to("/style.css")


def test_a_feed_url_is_its_own_answer(loopback: LoopbackServer) -> None:
    loopback.route("/world.rss", Reply(body=RSS, headers={"Content-Type": "application/rss+xml"}))
    code, output = discover(loopback.url("/world.rss"), "--allow-private-networks")
    assert code == 0 and yaml.safe_load(output)["feeds"][0]["url"] == loopback.url("/world.rss")
    assert len(loopback.requests_to("/world.rss")) == 1


def test_private_addresses_are_refused_by_default(loopback: LoopbackServer) -> None:
    loopback.route("/", Reply(body=page(""), headers={"Content-Type": "text/html"}))
    code, output = discover(loopback.url("/"))
    assert code == 1, output
    assert "refused" in output and "127.0.0.1" in output, output
    assert not loopback.requests_to("/")


def test_nothing_found_exits_1(loopback: LoopbackServer) -> None:
    loopback.route("/", Reply(body=page(""), headers={"Content-Type": "text/html"}))
    code, output = discover(loopback.url("/"), "--allow-private-networks")
    assert code == 1 and "no feed found" in output


def test_feed_links_resolve_and_filter() -> None:
    html = page(
        '<LINK REL="Alternate feed" TYPE="application/RSS+xml; charset=utf-8" HREF="../f.xml">'
        '<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">'
        '<link rel="alternate" type="text/html" href="/fr/">'
    ).encode()
    assert feed_links(html, "https://x.example/a/b/") == [("https://x.example/a/f.xml", "")]
