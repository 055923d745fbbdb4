"""Hostile input through the real ingestion: whole passes against servers that attack.

tests/test_fetch.py checks the fetcher's limits one at a time. Here each attack sits in a
config next to a well-behaved feed and goes through ``run_pass``: the pass must end within
seconds, the problem must be recorded where `watcher feeds` or the article shows it, the
good feed's work must be intact and memory must stay bounded. Covered: entity expansion and
external entities in feeds and pages, bodies over the cap, a gzip bomb, a one-byte-a-second
drip, a redirect loop, wrong and missing charsets and invalid bytes, HTML for a feed and a
feed for a page, an empty body, a connection reset mid-body and TLS failures.
"""

from __future__ import annotations

import asyncio
import functools
import html
import json
import logging
import re
import socket
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from support.raw import RawServer, Script
from support.server import LoopbackServer, Reply
from watcher.config.loading import parse_config
from watcher.config.models import Config
from watcher.pipeline.extract import extract_article
from watcher.records import ArticleState, VersionRecord
from watcher.storage.store import Store
from watcher.tasks import PassSummary, PollOutcome, open_context, run_pass

MB = 1024 * 1024
CAP = 200_000  # fetch.max_bytes in every config here ("200KB")
DEADLINE = 2.0  # fetch.deadline
# A pass with one fetch stage stuck on the deadline must end within this.
PASS_SECONDS = DEADLINE + 2.0
# tracemalloc peak of a whole pass (about 1-2 MB here); the bodies attacking it are 64 MB+.
MEMORY_LIMIT = 8 * MB

STORY = [
    "Officials in the port city said on Tuesday that the strike had ended after three "
    "weeks of talks between the dock workers' union and the operators.",
    "Ships that had waited at anchor began to move into the harbour in the afternoon, and "
    "the first containers were unloaded before nightfall.",
    "The union said its members would return to work on Wednesday morning, while the "
    "operators promised to publish the agreement in full by the end of the week.",
]
CALM_TEXT = "The harbour reopened on Monday after the storm, the port authority said."


# --- documents -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    guid: str
    title: str
    link: str
    text: str


def rss(items: Iterable[Item], *, title: str = "Hostile Times", prolog: str = "") -> str:
    entries = "".join(
        f"<item><title>{html.escape(i.title)}</title><link>{html.escape(i.link)}</link>"
        f'<guid isPermaLink="false">{i.guid}</guid>'
        f"<description>{html.escape(i.text)}</description></item>"
        for i in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n{prolog}<rss version="2.0"><channel>'
        f"<title>{title}</title><link>http://news.test/</link>{entries}</channel></rss>"
    )


def page_html(
    title: str, paragraphs: Sequence[str], *, head: str = '<meta charset="utf-8">'
) -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html><html><head>{head}<title>{title}</title></head><body>"
        f"<nav><a href='/'>Home</a></nav><main><article><h1>{title}</h1>\n{body}\n"
        "</article></main><footer>Hostile Times</footer></body></html>"
    )


@functools.cache
def gzip_bomb(decoded: int = 128 * MB) -> bytes:
    """``decoded`` zero bytes, gzipped (about 1/1000 of that), built without holding them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MB)
    return b"".join(packer.compress(zeros) for _ in range(decoded // MB)) + packer.flush()


# --- scripts for a server that misbehaves below HTTP ------------------------------------------


def _head(status: str = "200 OK", **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def endless(content_type: str, limit: int = 64 * MB) -> Script:
    """A body without Content-Length, ended by closing: up to ``limit`` bytes of it."""
    block = b"<p>" + b"x" * 65530 + b"</p>"

    def script(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(_head(Content_Type=content_type, Connection="close"))
        sent = 0
        while sent < limit and not stop.is_set():
            conn.sendall(block)
            sent += len(block)

    return script


def drip(content_type: str) -> Script:
    """Headers promising 100,000 bytes, then one byte a second."""

    def script(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(_head(Content_Type=content_type, Content_Length="100000"))
        while not stop.wait(1.0):
            conn.sendall(b"<")

    return script


def reset_mid_body(content_type: str, body: bytes) -> Script:
    """Headers and half the body, then a TCP reset (SO_LINGER 0), not an orderly close."""

    def script(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(_head(Content_Type=content_type, Content_Length=str(len(body))))
        conn.sendall(body[: len(body) // 2])
        time.sleep(0.05)  # let the client start reading the body
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return script


def plain_http_on_tls(conn: socket.socket, stop: threading.Event) -> None:
    """Answers the ClientHello as if it were an HTTP request."""
    conn.sendall(_head("400 Bad Request", Content_Length="0"))


def hang_up_on_tls(conn: socket.socket, stop: threading.Event) -> None:
    """Reads the ClientHello and closes the connection."""


# --- fixtures and a pass ------------------------------------------------------------------


@dataclass
class Servers:
    loopback: LoopbackServer
    raw: RawServer


@pytest.fixture
def servers(loopback: LoopbackServer) -> Iterator[Servers]:
    with RawServer() as raw:
        yield Servers(loopback, raw)


@pytest.fixture(scope="module", autouse=True)
def warm_extractor() -> None:
    # trafilatura and lxml fill caches on first use; a traced pass must not count them.
    for paragraphs in (STORY, [CALM_TEXT]):  # a short page makes trafilatura try justext too
        extract_article(page_html("Warm-up", paragraphs).encode(), "http://warm.test/a")
    gzip_bomb()


@pytest.fixture
def calm(loopback: LoopbackServer) -> str:
    """A well-behaved feed with one story whose page works; returns the feed URL."""
    page = loopback.url("/calm/harbour.html")
    loopback.route("/calm/harbour.html", Reply(200, page_html("Harbour reopens", [CALM_TEXT])))
    feed = rss([Item("calm-1", "Harbour reopens", page, CALM_TEXT)], title="Calm")
    loopback.route("/calm.xml", Reply(200, feed, {"Content-Type": "application/rss+xml"}))
    return loopback.url("/calm.xml")


def make_config(feeds: dict[str, str], *, feed_text_only: Iterable[str] = ()) -> Config:
    text_only = set(feed_text_only)
    lines = "\n".join(
        f'  - {{name: {name}, url: "{url}"'
        + (", fetch_article: false" if name in text_only else "")
        + "}"
        for name, url in feeds.items()
    )
    return parse_config(
        "allow_private_networks: true  # every server here is on 127.0.0.1\n"
        f"fetch: {{max_bytes: 200KB, deadline: {DEADLINE:g}s, read_timeout: 5s, per_host: 8}}\n"
        f"feeds:\n{lines}\n"
    )


@dataclass(frozen=True)
class Ran:
    summary: PassSummary
    seconds: float
    peak: int  # tracemalloc peak in bytes (0 when not traced)

    def poll(self, feed: str) -> PollOutcome:
        return next(p for p in self.summary.polls if p.feed == feed)


def one_pass(config: Config, store: Store, *, trace: bool = False) -> Ran:
    async def go() -> PassSummary:
        async with open_context(config, store) as ctx:
            return await run_pass(ctx, recheck_all=True)

    if trace:
        tracemalloc.start()
    started = time.monotonic()
    try:
        summary = asyncio.run(go())
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
    finally:
        if trace:
            tracemalloc.stop()
    return Ran(summary, time.monotonic() - started, peak)


def versions(store: Store, key: str) -> tuple[ArticleState, list[VersionRecord]]:
    article = store.find_article(key)
    assert article is not None, key
    return article, store.versions(article.id)


def names(pattern: str, error: str | None) -> bool:
    """Whether the reason of a recorded error (after "<url>: ") matches ``pattern``."""
    reason = re.sub(r"^\S+?://\S*: ", "", error or "")
    return re.search(pattern, reason, re.IGNORECASE) is not None


def assert_calm_intact(store: Store, ran: Ran) -> None:
    """The well-behaved feed of the same pass was polled and its story read from its page."""
    assert ran.poll("calm").status == "ok"
    _, stored = versions(store, "calm-1")
    assert stored[-1].source == "page" and CALM_TEXT in stored[-1].text


def database_text(store: Store) -> Iterator[tuple[str, str, str]]:
    """(table, column, value) for every text value in every table of the database."""
    tables = MetaData()
    tables.reflect(store.engine)
    with store.engine.connect() as connection:
        for table in tables.sorted_tables:
            for row in connection.execute(select(table)).mappings():
                for column, value in row.items():
                    if isinstance(value, str):
                        yield table.name, str(column), value


# --- 1. entity expansion and external entities in feeds -------------------------------------

SECRET = "s3cr3t-f1le-c0ntent"
LAUGHS = "".join(
    f'<!ENTITY lol{i} "{(f"&lol{i - 1};" if i > 1 else "lol") * 10}">\n' for i in range(1, 10)
)


@dataclass(frozen=True)
class EntityAttack:
    """A feed whose prolog attacks; ``use`` is what its item's title and text reference."""

    prolog: Callable[[Servers, Path], str]
    use: str
    charset: str = "utf-8"


ENTITY_ATTACKS = {
    "billion-laughs": EntityAttack(lambda s, d: f"<!DOCTYPE rss [\n{LAUGHS}]>\n", "&lol9;"),
    # feedparser finds the DOCTYPE with a regex that stops at the first "<x", so this one
    # reached expat whole: seconds and tens of MB before expat's amplification limit hit.
    "billion-laughs-behind-a-comment": EntityAttack(
        lambda s, d: f"<!-- <x> -->\n<!DOCTYPE rss [{LAUGHS}]>\n", "&lol9;"
    ),
    "billion-laughs-in-utf-16": EntityAttack(
        lambda s, d: f"<!DOCTYPE rss [\n{LAUGHS}]>\n", "&lol9;", charset="utf-16"
    ),
    # No nesting, so feedparser's loose parser took it for "safe" and expanded it:
    # 100 KB times 1,500 references is 150 MB of text.
    "quadratic-blowup": EntityAttack(
        lambda s, d: f'<!DOCTYPE rss [\n<!ENTITY a "{"A" * 100_000}">\n]>\n', "&a;" * 1500
    ),
    "xxe-local-file": EntityAttack(
        lambda s, d: f'<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file://{d / "secret.txt"}">\n]>\n',
        "&xxe;",
    ),
    "xxe-etc-passwd": EntityAttack(
        lambda s, d: '<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n', "&xxe;"
    ),
    "xxe-http": EntityAttack(
        lambda s, d: f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{s.loopback.url("/xxe")}">]>\n',
        "&xxe;",
    ),
    "xxe-parameter-entity": EntityAttack(
        lambda s, d: (
            f'<!DOCTYPE rss [\n<!ENTITY % ext SYSTEM "{s.loopback.url("/evil.dtd")}">\n%ext;\n]>\n'
        ),
        "&leak;",
    ),
    "external-dtd": EntityAttack(
        lambda s, d: f'<!DOCTYPE rss SYSTEM "{s.loopback.url("/evil.dtd")}">\n', "&leak;"
    ),
}


@pytest.mark.parametrize("name", list(ENTITY_ATTACKS))
def test_entities_in_a_feed_expand_nothing_and_fetch_nothing(
    servers: Servers, calm: str, store: Store, tmp_path: Path, name: str
) -> None:
    attack = ENTITY_ATTACKS[name]
    (tmp_path / "secret.txt").write_text(SECRET + "\n")
    loopback = servers.loopback
    # What an XXE would bring in, if anything fetched it.
    loopback.route("/xxe", Reply(200, SECRET))
    loopback.route("/evil.dtd", Reply(200, f'<!ENTITY leak "{SECRET}">'))
    item = Item("attack-1", f"Attack {attack.use[:40]}", "http://news.test/a", attack.use)
    feed = rss([item], prolog=attack.prolog(servers, tmp_path)).replace("&amp;", "&")
    body = feed.replace('encoding="utf-8"', f'encoding="{attack.charset}"').encode(attack.charset)
    content_type = f"application/rss+xml; charset={attack.charset}"
    loopback.route("/attack.xml", Reply(200, body, {"Content-Type": content_type}))
    config = make_config(
        {"attack": loopback.url("/attack.xml"), "calm": calm}, feed_text_only=["attack"]
    )

    ran = one_pass(config, store, trace=True)

    assert ran.seconds < 3, f"{ran.seconds:.1f} s"
    assert ran.peak < MEMORY_LIMIT, f"peak {ran.peak / MB:.1f} MB"
    assert [r.path for r in loopback.requests_to("/xxe") + loopback.requests_to("/evil.dtd")] == []
    poll = ran.poll("attack")
    # The feed is read; the references stay literal text.
    assert poll.status == "ok" and poll.entries == 1, poll
    _, stored = versions(store, "attack-1")
    assert stored[0].source == "feed" and "&" in stored[0].title
    stored_text = list(database_text(store))
    leaks = [(t, c) for t, c, v in stored_text if SECRET in v or "root:x:0:0" in v]
    assert leaks == []
    assert not any("lol" * 20 in v or "A" * 200_000 in v for _, _, v in stored_text)
    assert sum(len(v) for _, _, v in stored_text) < MB  # nothing grew on the way in
    assert_calm_intact(store, ran)


def test_plain_entity_declarations_still_work(servers: Servers, calm: str, store: Store) -> None:
    # What a real feed declares: named characters and a short text. These are kept.
    prolog = "<!DOCTYPE rss [\n<!ENTITY nbsp \"&#160;\">\n<!ENTITY site 'Hostile Times'>\n]>\n"
    item = Item("kept-1", "Port&nbsp;strike ends, says &site;", "http://news.test/k", CALM_TEXT)
    feed = rss([item], prolog=prolog).replace("&amp;", "&")
    servers.loopback.route("/kept.xml", Reply(200, feed, {"Content-Type": "application/xml"}))
    config = make_config(
        {"kept": servers.loopback.url("/kept.xml"), "calm": calm}, feed_text_only=["kept"]
    )
    ran = one_pass(config, store)
    assert ran.poll("kept").status == "ok" and ran.poll("kept").warning is None
    article, _ = versions(store, "kept-1")
    # (Titles have their whitespace folded, the no-break space included.)
    assert article.entry_title == "Port strike ends, says Hostile Times"


def test_entity_declarations_in_an_article_page_expand_nothing(
    servers: Servers, calm: str, store: Store, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text(SECRET + "\n")
    loopback = servers.loopback
    loopback.route("/xxe", Reply(200, SECRET))
    doctype = (
        f'<!DOCTYPE html [\n{LAUGHS}<!ENTITY a "{"A" * 100_000}">\n'
        f'<!ENTITY file SYSTEM "file://{tmp_path / "secret.txt"}">\n'
        f'<!ENTITY net SYSTEM "{loopback.url("/xxe")}">\n]>\n'
    )
    paragraphs = [*STORY, "&lol9; &file; &net; " + "&a;" * 1500]
    page = page_html("Entities", paragraphs).replace("<!DOCTYPE html>", doctype)
    loopback.route("/entities.html", Reply(200, page, {"Content-Type": "text/html"}))
    item = Item("entities-1", "Entities", loopback.url("/entities.html"), CALM_TEXT)
    loopback.route("/page.xml", Reply(200, rss([item]), {"Content-Type": "application/xml"}))
    config = make_config({"pages": loopback.url("/page.xml"), "calm": calm})

    ran = one_pass(config, store, trace=True)

    assert ran.seconds < 3 and ran.peak < MEMORY_LIMIT, (ran.seconds, ran.peak / MB)
    assert loopback.requests_to("/xxe") == []
    _, stored = versions(store, "entities-1")
    assert stored[-1].source == "page" and STORY[0] in stored[-1].text
    stored_text = list(database_text(store))
    assert not [v for _, _, v in stored_text if SECRET in v or "lol" * 20 in v]
    assert sum(len(v) for _, _, v in stored_text) < MB
    assert_calm_intact(store, ran)


# --- 2. hostile HTTP: the feed ------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    """A misbehaving answer for ``path``: installs it and returns the URL to configure."""

    serve: Callable[[Servers, str], str]
    error: str  # a regular expression the recorded error must match
    huge: bool = False  # the body is far bigger than the cap: trace memory


def _loopback(reply: Reply | Callable[[], Reply]) -> Callable[[Servers, str], str]:
    def serve(s: Servers, path: str) -> str:
        s.loopback.route(path, reply() if callable(reply) else reply)
        return s.loopback.url(path)

    return serve


def _raw(script: Script, *, tls: bool = False) -> Callable[[Servers, str], str]:
    def serve(s: Servers, path: str) -> str:
        s.raw.route(None if tls else path, script)
        return s.raw.url(path, "https" if tls else "http")

    return serve


def _redirect_loop(s: Servers, path: str) -> str:
    s.loopback.route(path, Reply(302, headers={"Location": path + "?again"}))
    return s.loopback.url(path)


def _gzip_bomb(content_type: str) -> Callable[[], Reply]:
    return lambda: Reply(
        200, gzip_bomb(), {"Content-Encoding": "gzip", "Content-Type": content_type}
    )


RSS_TYPE = "application/rss+xml"
HTML_TYPE = "text/html; charset=utf-8"
A_FEED = rss([Item("f-1", "A story", "http://news.test/1", CALM_TEXT)]).encode()
A_PAGE = page_html("A story", STORY).encode()
AN_ATOM_FEED = (
    '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
    "<title>Hostile Times</title>"
    + "".join(
        f"<entry><title>Story {n}</title><id>e{n}</id><summary>{s}</summary></entry>"
        for n, s in enumerate(STORY)
    )
    + "</feed>"
).encode()
A_JSON_FEED = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Hostile Times",
        "items": [{"id": f"j{n}", "content_html": f"<p>{s}</p>"} for n, s in enumerate(STORY)],
    }
).encode()


def shared_attacks(content_type: str, body: bytes) -> dict[str, Attack]:
    """What can go wrong with any URL, for a feed or a page of this type."""
    return {
        "over-cap-with-length": Attack(
            _loopback(Reply(200, body + b" " * (2 * CAP), {"Content-Type": content_type})),
            "body exceeds 200000 bytes",
        ),
        "over-cap-streamed": Attack(
            _raw(endless(content_type)), "body exceeds 200000 bytes", huge=True
        ),
        "gzip-bomb": Attack(
            _loopback(_gzip_bomb(content_type)), "body exceeds 200000 bytes", huge=True
        ),
        "slow-drip": Attack(_raw(drip(content_type)), r"deadline of 2 s exceeded"),
        "redirect-loop": Attack(_redirect_loop, r"too many redirects \(5\)"),
        # fetch names it "ReadError" for now: see test_a_reset_is_named_a_reset.
        "reset-mid-body": Attack(_raw(reset_mid_body(content_type, body)), "ReadError|reset"),
        "tls-answered-in-plain-http": Attack(
            _raw(plain_http_on_tls, tls=True), "TLS error: .*WRONG_VERSION_NUMBER"
        ),
        "tls-handshake-hung-up": Attack(_raw(hang_up_on_tls, tls=True), "TLS error"),
    }


FEED_ATTACKS = {
    **shared_attacks(RSS_TYPE, A_FEED),
    "empty-body": Attack(_loopback(Reply(200, b"", {"Content-Type": RSS_TYPE})), "empty body"),
    "html-for-a-feed": Attack(
        _loopback(Reply(200, A_PAGE, {"Content-Type": HTML_TYPE})), "got an HTML page, not a feed"
    ),
    "html-for-a-feed-labelled-rss": Attack(
        _loopback(Reply(200, A_PAGE, {"Content-Type": RSS_TYPE})), "got an HTML page, not a feed"
    ),
    "binary-for-a-feed": Attack(
        _loopback(Reply(200, bytes(range(256)) * 64, {"Content-Type": RSS_TYPE})),
        "not well-formed|no RSS, Atom or JSON Feed",
    ),
}


@pytest.mark.parametrize("name", list(FEED_ATTACKS))
def test_hostile_feed_fails_alone_and_says_why(
    servers: Servers, calm: str, store: Store, name: str
) -> None:
    attack = FEED_ATTACKS[name]
    config = make_config({"hostile": attack.serve(servers, "/hostile.xml"), "calm": calm})

    ran = one_pass(config, store, trace=attack.huge)

    assert ran.seconds < PASS_SECONDS, f"{ran.seconds:.1f} s"
    if attack.huge:
        assert ran.peak < MEMORY_LIMIT, f"peak {ran.peak / MB:.1f} MB"
    poll = ran.poll("hostile")
    assert poll.status == "failed" and names(attack.error, poll.error), poll
    (state,) = store.feed_states(["hostile"])
    assert state.last_error == poll.error and state.error_streak == 1
    assert state.articles == 0
    assert_calm_intact(store, ran)


# --- 3. hostile HTTP: the article page ------------------------------------------------------

PAGE_ATTACKS = {
    **shared_attacks(HTML_TYPE, A_PAGE),
    "empty-body": Attack(
        _loopback(Reply(200, b"", {"Content-Type": HTML_TYPE})), "extraction failed: empty"
    ),
    "feed-for-a-page": Attack(
        _loopback(Reply(200, A_FEED, {"Content-Type": RSS_TYPE})), "a feed, not an article page"
    ),
    "feed-for-a-page-labelled-html": Attack(
        _loopback(Reply(200, A_FEED, {"Content-Type": HTML_TYPE})), "a feed, not an article page"
    ),
    # An Atom feed parses as HTML well enough to yield its entries' text as "the article".
    "atom-for-a-page": Attack(
        _loopback(Reply(200, AN_ATOM_FEED, {"Content-Type": HTML_TYPE})),
        "a feed, not an article page",
    ),
    "json-feed-for-a-page": Attack(
        _loopback(Reply(200, A_JSON_FEED, {"Content-Type": HTML_TYPE})),
        "JSON, not an article page",
    ),
    "binary-for-a-page": Attack(
        _loopback(Reply(200, bytes(range(256)) * 64, {"Content-Type": HTML_TYPE})),
        "binary content, not HTML",
    ),
}


@pytest.mark.parametrize("name", list(PAGE_ATTACKS))
def test_hostile_page_falls_back_then_fails_the_check(
    servers: Servers, calm: str, store: Store, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    attack = PAGE_ATTACKS[name]
    loopback = servers.loopback
    fresh_url = attack.serve(servers, "/hostile/fresh.html")
    turned_url = attack.serve(servers, "/hostile/turned.html")
    loopback.route("/fine.html", Reply(200, page_html("Turned", STORY)))
    fresh = Item("fresh", "Hostile from the start", fresh_url, "Text the feed gives for it.")
    # Read from its page once; then the same story (same guid) moves to the hostile URL.
    turned = Item("turned", "Turned hostile", loopback.url("/fine.html"), "The feed's own text.")
    feed_type = {"Content-Type": RSS_TYPE}
    loopback.route("/mixed.xml", Reply(200, rss([fresh, turned]), feed_type))
    config = make_config({"mixed": loopback.url("/mixed.xml"), "calm": calm})
    caplog.set_level(logging.INFO, logger="watcher.tasks")

    first = one_pass(config, store, trace=attack.huge)

    # First sight: the page fails, so the article starts from the feed's text.
    assert first.poll("mixed").status == "ok"
    _, fresh_versions = versions(store, "fresh")
    assert [(v.source, v.text) for v in fresh_versions] == [("feed", fresh.text)]
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("watcher.tasks.")]
    assert any(names(attack.error, m) for m in logged), logged
    _, turned_versions = versions(store, "turned")
    assert turned_versions[-1].source == "page"

    turned_now = Item(turned.guid, turned.title, turned_url, turned.text)
    loopback.route("/mixed.xml", Reply(200, rss([fresh, turned_now]), feed_type))
    second = one_pass(config, store, trace=attack.huge)

    # Once read from its page, a failure is a failed check, not an edit and not feed text.
    article, after = versions(store, "turned")
    assert after == turned_versions
    assert article.link == turned_url and article.failures == 1
    assert names(attack.error, article.last_error), article.last_error
    statuses = {c.article_id: c.status for c in second.summary.checks}
    assert statuses[article.id] == "failed"
    assert versions(store, "fresh")[1] == fresh_versions  # still the feed text, unchanged
    for ran in (first, second):
        assert ran.seconds < PASS_SECONDS, f"{ran.seconds:.1f} s"
        if attack.huge:
            assert ran.peak < MEMORY_LIMIT, f"peak {ran.peak / MB:.1f} MB"
        assert_calm_intact(store, ran)


def test_a_reset_is_named_a_reset(servers: Servers, calm: str, store: Store) -> None:
    url = _raw(reset_mid_body(RSS_TYPE, A_FEED))(servers, "/feed.xml")
    ran = one_pass(make_config({"cut": url, "calm": calm}), store)
    assert names("reset", ran.poll("cut").error)


# --- 4. charsets: wrong, missing, invalid ---------------------------------------------------

ACCENTED = "Café owners in Zürich say “prices will not rise”"
ACCENTED_TEXT = "Crème brûlée costs 5 € at the café, the owner said: “We never close.”"


def _french_feed() -> str:
    # Enough accented text that a stray byte is the exception, as in a real feed.
    return rss(
        [
            Item(f"fr-{n}", f"{ACCENTED} ({n})", f"http://news.test/fr/{n}", ACCENTED_TEXT)
            for n in range(6)
        ]
    )


def _latin1(text: str) -> bytes:
    return text.replace("“", '"').replace("”", '"').replace("€", "EUR").encode("latin-1")


@dataclass(frozen=True)
class Misdeclared:
    body: bytes
    content_type: str
    title: str  # the first item's title as it must be read


FEED_CHARSETS = {
    "latin-1-labelled-utf-8": Misdeclared(
        _latin1(_french_feed()), f"{RSS_TYPE}; charset=utf-8", _latin1(ACCENTED).decode("latin-1")
    ),
    "utf-8-labelled-text-xml-without-charset": Misdeclared(
        _french_feed().encode(), "text/xml", ACCENTED
    ),
    "utf-8-with-stray-invalid-bytes": Misdeclared(
        _french_feed().encode().replace(b"costs 5", b"costs \xff5 \xc3", 1),
        f"{RSS_TYPE}; charset=utf-8",
        ACCENTED,
    ),
    "unknown-charset-label": Misdeclared(
        _french_feed().encode(), f"{RSS_TYPE}; charset=x-no-such-charset", ACCENTED
    ),
    "python-only-codec-label": Misdeclared(
        _french_feed().encode(), f"{RSS_TYPE}; charset=rot13", ACCENTED
    ),
}


@pytest.mark.parametrize("name", list(FEED_CHARSETS))
def test_misdeclared_feed_is_still_read(
    servers: Servers, calm: str, store: Store, name: str
) -> None:
    case = FEED_CHARSETS[name]
    loopback = servers.loopback
    loopback.route("/fr.xml", Reply(200, case.body, {"Content-Type": case.content_type}))
    config = make_config({"fr": loopback.url("/fr.xml"), "calm": calm}, feed_text_only=["fr"])
    ran = one_pass(config, store)
    poll = ran.poll("fr")
    assert poll.status == "ok" and poll.entries == 6, poll
    article, stored = versions(store, "fr-0")
    assert article.entry_title == f"{case.title} (0)"
    assert "Crème brûlée" in stored[0].text
    assert_calm_intact(store, ran)


@dataclass(frozen=True)
class MisdeclaredPage:
    body: bytes
    content_type: str
    headline: str = ACCENTED
    phrase: str = "Crème brûlée costs"  # from the first paragraph, as it must be read


def _page(head: str = "") -> str:
    return page_html(ACCENTED, [ACCENTED_TEXT, *STORY], head=head)


KOI8_HEADLINE = "Москва: цены не вырастут"
KOI8_PHRASE = "Владельцы кафе говорят"
KOI8_PAGE = page_html(KOI8_HEADLINE, [f"{KOI8_PHRASE}, что цены не вырастут.", *STORY], head="")

PAGE_CHARSETS = {
    "utf-8-with-stray-invalid-bytes": MisdeclaredPage(
        _page().encode().replace(b"costs 5", b"costs \xff5 \xc3", 1), "text/html"
    ),
    "latin-1-without-any-label": MisdeclaredPage(
        _latin1(_page()), "text/html", _latin1(ACCENTED).decode("latin-1")
    ),
    "latin-1-labelled-utf-8-in-meta": MisdeclaredPage(
        _latin1(_page('<meta charset="utf-8">')), "text/html", _latin1(ACCENTED).decode("latin-1")
    ),
    "utf-8-labelled-latin-1": MisdeclaredPage(
        _page('<meta charset="iso-8859-1">').encode(), "text/html; charset=iso-8859-1"
    ),
    "python-only-codec-in-meta": MisdeclaredPage(
        _page('<meta charset="rot13">').encode().replace(b"costs 5", b"costs \xff5", 1),
        "text/html",
    ),
    "undefined-codec-in-meta": MisdeclaredPage(
        _latin1(_page('<meta charset="undefined">')),
        "text/html",
        _latin1(ACCENTED).decode("latin-1"),
    ),
    "koi8-r-labelled-in-meta": MisdeclaredPage(
        KOI8_PAGE.replace("<head>", '<head><meta charset="koi8-r">').encode("koi8-r"),
        "text/html",
        KOI8_HEADLINE,
        KOI8_PHRASE,
    ),
    "koi8-r-labelled-in-http-only": MisdeclaredPage(
        KOI8_PAGE.encode("koi8-r"), "text/html; charset=koi8-r", KOI8_HEADLINE, KOI8_PHRASE
    ),
}


@pytest.mark.parametrize("case", list(PAGE_CHARSETS.values()), ids=list(PAGE_CHARSETS))
def test_misdeclared_page_is_still_read(
    servers: Servers, calm: str, store: Store, case: MisdeclaredPage
) -> None:
    loopback = servers.loopback
    loopback.route("/page.html", Reply(200, case.body, {"Content-Type": case.content_type}))
    item = Item("page-1", "From the feed", loopback.url("/page.html"), "Feed text.")
    loopback.route("/pages.xml", Reply(200, rss([item]), {"Content-Type": RSS_TYPE}))
    ran = one_pass(make_config({"pages": loopback.url("/pages.xml"), "calm": calm}), store)
    _, stored = versions(store, "page-1")
    assert stored[0].source == "page", stored[0]
    assert stored[0].title == case.headline
    assert case.phrase in stored[0].text and STORY[0] in stored[0].text
    assert_calm_intact(store, ran)
