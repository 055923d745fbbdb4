"""``watcher demo``: a small simulated newsroom on 127.0.0.1 whose editor keeps editing.

The site serves an RSS feed, an index page and one page per story (stories in
:mod:`watcher.demo.stories`), each page dressed in the furniture real news sites carry: a
clock, "updated N minutes ago", view and comment counters, a most-read box, ad slots with
random ids, a copyright year. An :class:`Editor` thread makes one real edit every few
seconds, in turn a number revised, a quote changed, a paragraph added and a headline
rewritten, and now and then publishes another story. Replies carry an ETag and answer 304
to a matching If-None-Match, as most news sites behind a cache do.

Nothing here prints: the ``watcher demo`` command (:mod:`watcher.cli.app`) shows the texts
built here and runs the real daemon against the site.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import logging
import random
import shlex
import textwrap
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template
from typing import cast
from urllib.parse import urlsplit

from watcher.demo.stories import DRAFTS, EDIT_KINDS, EDITS, FIRST_EDITION, Edit, Story
from watcher.storage.store import Store

log = logging.getLogger(__name__)

SITE = "Loopback News"
# After every this many edits the editor publishes the next story, while any is left.
PUBLISH_EVERY = 6
# Like a site's cache, a page is re-rendered (new clock, counters, most-read box) when its
# story changes and otherwise at most this often: watcher then fetches pages whose furniture
# changed but whose story did not, and must store no version for them.
RENDER_EVERY = 15.0
# How the demo config has watcher poll and re-check: seconds, where real feeds want minutes.
FEED_INTERVAL = "5s"
RECHECK_EVERY = "2s"

# Headlines of the stories the most-read and related boxes link to.
OTHER_HEADLINES = [
    "Central bank holds rates steady as inflation cools",
    "Storm leaves thousands without power along the coast",
    "Football club names new manager after losing streak",
    "Parliament debates new budget amid protests",
    "Scientists report record heat in the northern ocean",
    "Rail strike called off after overnight talks",
    "Museum returns looted artefacts to their owners",
    "Election commission publishes final turnout figures",
]
_SOME_DAY = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def render_page(
    title: str, paragraphs: Sequence[str], rng: random.Random, now: datetime | None = None
) -> str:
    """An article page whose furniture differs on every call: ad ids, the clock (``now``,
    else a random time of day), counters, the most-read box, the copyright year."""
    ad = f"ad-{rng.getrandbits(40):x}"
    clock = now if now is not None else _SOME_DAY + timedelta(seconds=rng.randrange(86400))
    most_read = "".join(
        f'<li><a href="/news/other-{rng.randrange(999)}.html">{h}</a></li>'
        for h in rng.sample(OTHER_HEADLINES, 4)
    )
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} | {SITE}</title>
<meta property="og:title" content="{html.escape(title)}">
<script>window.__ads={{slot:"{ad}",ts:{rng.randrange(10**9)}}}</script></head>
<body class="v{rng.randrange(9)}">
<header><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/business">Business</a>
<a href="/sport">Sport</a> <span class="clock">{clock:%H:%M:%S} GMT</span></nav></header>
<div id="{ad}" class="ad-slot" data-ad="{ad}">Advertisement</div>
<main><article>
<h1>{html.escape(title)}</h1>
<p class="byline">By Staff Reporter · Updated {rng.randrange(1, 59)} minutes ago ·
{rng.randrange(100, 99999):,} views · {rng.randrange(0, 500)} comments</p>
{body}
<p class="newsletter">Sign up for our morning newsletter to get the top stories in your inbox.</p>
</article>
<aside><h2>Most read</h2><ol>{most_read}</ol></aside>
<aside><h2>Related</h2><ul>{most_read}</ul></aside>
<section class="comments"><p>Comments are moderated. Please read our community guidelines
before posting.</p></section></main>
<footer><p>© {2020 + rng.randrange(7)} {SITE} Ltd. All rights reserved.</p>
<p>Page generated in {rng.randrange(5, 900)} ms by node-{rng.randrange(64)}</p></footer>
</body></html>"""


# ----------------------------------------------------------------------------- the site


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    etag: str | None = None


@dataclass(frozen=True)
class _Rendered:
    revision: int
    at: float  # time.monotonic() when rendered
    body: bytes


class Newsroom:
    """The site's stories, the edits made to them, and the replies that serve them.

    Thread-safe: the server's threads and the editor's share one lock."""

    def __init__(self, base_url: str, *, seed: int = 1, render_every: float = RENDER_EVERY):
        self.base_url = base_url
        self.render_every = render_every
        self.edits = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._drafts = list(DRAFTS)
        self._stories: dict[str, Story] = {}
        self._pages: dict[str, _Rendered] = {}
        for _ in range(FIRST_EDITION):
            self.publish_next()

    @property
    def feed_url(self) -> str:
        return self.base_url + "/rss.xml"

    def story_urls(self) -> list[str]:
        with self._lock:
            return [self.base_url + story.path for story in self._stories.values()]

    def current(self, slug: str) -> tuple[str, tuple[str, ...]]:
        """A story's headline and paragraphs as they read now."""
        with self._lock:
            story = self._stories[slug]
            return story.title, tuple(story.paragraphs)

    def publish_next(self) -> str | None:
        """Publish the next draft; its headline, or None when every draft is out."""
        with self._lock:
            if not self._drafts:
                return None
            story = Story.publish(self._drafts.pop(0), datetime.now(UTC).replace(microsecond=0))
            self._stories[story.slug] = story
            return story.title

    def edit_next(self) -> Edit:
        """The next edit: the kinds in turn, each time to another story."""
        with self._lock:
            n = self.edits
            stories = list(self._stories.values())
            # Moving on one more story after each round of kinds: with as many stories as
            # kinds, each story would otherwise only ever get the same kind of edit.
            story = stories[(n + n // len(EDIT_KINDS)) % len(stories)]
            kind = EDIT_KINDS[n % len(EDIT_KINDS)]
            what = EDITS[kind](story, self._rng)
            story.revision += 1
            self.edits += 1
            return Edit(kind, story.slug, story.title, what)

    def respond(self, target: str, if_none_match: str | None = None) -> Response:
        """The reply to a GET of ``target`` (a path, maybe with a query)."""
        path = urlsplit(target).path
        with self._lock:
            if path == "/rss.xml":
                body, kind = self._rss(), "application/rss+xml; charset=utf-8"
            elif path == "/":
                body, kind = self._index(), "text/html; charset=utf-8"
            elif (slug := _slug(path)) in self._stories:
                body, kind = self._page(slug), "text/html; charset=utf-8"
            else:
                return Response(404, b"not found\n")
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        if if_none_match and _matches(etag, if_none_match):
            return Response(304, etag=etag)
        return Response(200, body, kind, etag)

    def _page(self, slug: str) -> bytes:
        story = self._stories[slug]
        cached = self._pages.get(slug)
        stale = cached is None or time.monotonic() - cached.at >= self.render_every
        if cached is None or stale or cached.revision != story.revision:
            html_page = render_page(story.title, story.paragraphs, self._rng, datetime.now(UTC))
            cached = _Rendered(story.revision, time.monotonic(), html_page.encode())
            self._pages[slug] = cached
        return cached.body

    def _newest_first(self) -> list[Story]:
        return sorted(self._stories.values(), key=lambda s: s.published, reverse=True)

    def _rss(self) -> bytes:
        items = "".join(
            f"<item><title>{html.escape(s.title)}</title>"
            f"<link>{self.base_url}{s.path}</link>"
            f'<guid isPermaLink="false">loopback-news-{s.slug}</guid>'
            f"<pubDate>{format_datetime(s.published)}</pubDate>"
            f"<description>{html.escape(s.paragraphs[0])}</description></item>"
            for s in self._newest_first()
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{SITE}</title><link>{self.base_url}/</link>"
            f"<description>watcher's demo newsroom</description>{items}</channel></rss>"
        ).encode()

    def _index(self) -> bytes:
        links = "".join(
            f'<li><a href="{s.path}">{html.escape(s.title)}</a></li>' for s in self._newest_first()
        )
        return (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{SITE}</title>'
            f"</head><body><h1>{SITE}</h1><p>watcher's demo newsroom: its editor changes a story "
            f'every few seconds. <a href="/rss.xml">RSS</a></p><ul>{links}</ul></body></html>'
        ).encode()


def _matches(etag: str, if_none_match: str) -> bool:
    # The weak comparison of If-None-Match: W/"x" matches "x".
    wanted = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in wanted or "*" in wanted


def _slug(path: str) -> str:
    return path.removeprefix("/news/").removesuffix(".html")


# ------------------------------------------------------------------ server and editor


class _Server(ThreadingHTTPServer):
    # A client's idle keep-alive connection must not hold up the end of the demo.
    daemon_threads = True
    newsroom: Newsroom


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # an idle keep-alive connection gives its thread back after this

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        newsroom = cast(_Server, self.server).newsroom
        response = newsroom.respond(self.path, self.headers.get("If-None-Match"))
        self.send_response(response.status)
        if response.etag:
            self.send_header("ETag", response.etag)
        if response.status != 304:  # a 304 has no body, so no length or type of its own
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if send_body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the terminal is for watcher's own lines


class Editor:
    """Edits a story every ``every`` seconds on its own thread; now and then publishes one."""

    def __init__(self, newsroom: Newsroom, every: float) -> None:
        self.newsroom = newsroom
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-editor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def step(self) -> None:
        edit = self.newsroom.edit_next()
        log.info("newsroom: %s — “%s”", edit.what, edit.title)
        if self.newsroom.edits % PUBLISH_EVERY == 0:
            headline = self.newsroom.publish_next()
            if headline is not None:
                log.info("newsroom: published a new story — “%s”", headline)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.step()


@contextmanager
def running_newsroom(
    edit_every: float | None, *, seed: int = 1, render_every: float = RENDER_EVERY
) -> Iterator[Newsroom]:
    """Serve a newsroom on 127.0.0.1 (an ephemeral port), edited every ``edit_every``
    seconds (None: only when the caller edits); stops the editor and the server on exit."""
    httpd = _Server(("127.0.0.1", 0), _Handler)
    host, port = httpd.server_address[:2]
    httpd.newsroom = Newsroom(f"http://{host!s}:{port}", seed=seed, render_every=render_every)
    server = threading.Thread(target=httpd.serve_forever, args=(0.1,), name="demo-site")
    editor = Editor(httpd.newsroom, edit_every) if edit_every is not None else None
    server.start()
    try:
        if editor is not None:
            editor.start()
        yield httpd.newsroom
    finally:
        if editor is not None:
            editor.stop()
        httpd.shutdown()
        httpd.server_close()
        server.join()


# --------------------------------------------------------------------- config and texts

_CONFIG = Template("""\
# Written by `watcher demo`: watcher watching a simulated newsroom on this machine.
# The database (watcher.db) is in this folder.
state_dir: $state_dir

# Article links come from third-party feeds, so watcher normally refuses links that lead to
# loopback or private addresses (a hostile feed could make it fetch pages from inside your
# network). The demo newsroom *is* on 127.0.0.1, so the guard is off here. Leave this line
# out of a config that watches real feeds.
allow_private_networks: true

defaults:
  interval: $feed_interval                        # feed polls (real feeds: 10-15 min)
  recheck: [{until: 1d, every: $recheck_every}]   # article re-checks (real: minutes to hours)

feeds:
  - {name: demo-news, url: "$feed_url"}

notifiers:
  screen: "console://"    # alerts printed on the terminal

delivery:
  default: [screen]

# A story edited on most checks is a live page: its alerts come as one digest per story,
# here every 30 s (real: an hour) since the demo's time runs fast.
live_pages: {digest: 30s}

rules:
  - {name: ceasefire, keywords: [cease-fire], events: [new, changed]}
  - {name: all-edits, events: [changed]}
""")


def write_config(folder: Path, feed_url: str) -> Path:
    """The demo's config file, ``demo.yaml`` in ``folder`` (created if need be)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "demo.yaml"
    path.write_text(
        _CONFIG.substitute(
            # A JSON string is a YAML string too, quoted and escaped whatever the path holds.
            state_dir=json.dumps(str(folder.resolve())),
            feed_interval=FEED_INTERVAL,
            recheck_every=RECHECK_EVERY,
            feed_url=feed_url,
        )
    )
    return path


def introduction(newsroom: Newsroom, config_file: Path, edit_every: float) -> str:
    """What the user is about to see, and how to stop it."""
    site = (
        f"A simulated newsroom is running at {newsroom.base_url}/ (open it in a browser if "
        f"you like). Every {edit_every:g}s its editor changes a story: in turn a number "
        "revised, a quote changed, a paragraph added (or taken out again) and a headline "
        "rewritten; now and then it publishes a new story. Its pages also carry a clock, "
        '"updated N minutes ago", counters and a most-read box that change on their own: '
        "watcher must ignore those."
    )
    daemon = (
        f"watcher, the real daemon, polls the feed every {FEED_INTERVAL} and re-checks each "
        f"story every {RECHECK_EVERY}. Each new version is a log line; each alert is printed "
        "between two ─── lines, its diff marked [-removed-] and {+added+}. The rules:"
    )
    rules = (
        '  ceasefire   a story mentioning "cease-fire" appears, or an edit adds or removes it\n'
        "  all-edits   any edit to any story"
    )
    wrap = functools.partial(textwrap.fill, width=88, break_on_hyphens=False)
    return (
        "\n\n".join(
            ["watcher demo", wrap(site), f"{wrap(daemon)}\n{rules}", f"Config: {config_file}"]
        )
        + "\nPress Ctrl-C to stop.\n"
    )


def follow_up(config_file: Path, database_url: str, urls: Iterable[str]) -> str:
    """What to run next on the database the demo leaves behind; ``history`` and ``diff`` on
    the story with the most versions, when it has enough of them to show."""
    watcher = f"watcher -c {shlex.quote(str(config_file))}"
    lines = [
        f"The demo's database stays in {config_file.parent}/ (delete the folder when done).",
        "Explore what watcher recorded:",
        f"  {watcher} alerts",
    ]
    url, versions = _most_versions(database_url, urls)
    if versions >= 1:
        lines.append(f"  {watcher} history {shlex.quote(url)}")
    if versions >= 2:
        lines.append(f"  {watcher} diff {shlex.quote(url)}")
    return "\n".join(lines)


def _most_versions(database_url: str, urls: Iterable[str]) -> tuple[str, int]:
    store = Store.open(database_url)
    try:
        counts = {"": 0}
        for url in urls:
            article = store.find_article(url)
            if article is not None:
                counts[url] = len(store.versions(article.id))
    finally:
        store.close()
    return max(counts.items(), key=lambda item: item[1])
