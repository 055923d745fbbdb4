"""A news site on loopback for the soak benchmark (``bench/soak_bench.py``).

It runs in its own process, so its CPU never competes with the daemon for one GIL:

    python bench/soak_site.py --feeds 1000 --articles 20 --seconds 1500

and prints ``READY <port>`` on stdout once it listens on 127.0.0.1.

- ``/feeds/fNNNN.xml``: RSS 2.0 of the feed's newest ``--articles`` stories;
- ``/news/fNNNN/ID.html``: a story page, small HTML dressed with page furniture (clock,
  "updated N minutes ago", counters, most-read box, ad slot ids, copyright year) that is
  drawn afresh on every full answer, the way a real CMS renders;
- ETag and Last-Modified on everything, and 304 for a matching conditional GET: as on a real
  site, most re-checks of a story are answered 304;
- a slow trickle of real edits (a number revised, a sentence added or reworded, now and then
  a headline) and of new stories, each pushing the oldest story out of its feed;
- ``POST /hook``: a json:// endpoint for apprise that counts the notifications;
- ``GET /__stats``: JSON counters of everything above.

The server is a minimal HTTP/1.1 keep-alive handler on asyncio streams: http.server's
thread-per-connection design costs a thread switch per request, which matters at a few
hundred requests a second on a shared two-core machine. It stops by itself after
``--seconds`` or as soon as its parent process is gone, so it can never outlive a run.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import re
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from html import escape

# Sentence templates: every story fills them with its own place, person and group, so a
# paragraph recurs in no two stories (watcher would rightly learn a line shared by three
# stories of one site as furniture, and then ignore edits to it).
TEMPLATES = (
    "Officials in {place} said talks with {group} had entered a delicate phase.",
    "{person}, who has followed the negotiations for years, called the mood cautious.",
    "Residents of {place} described long queues for bread and fuel this week.",
    "Electricity came on for only {n} hours a day in parts of {place}, residents said.",
    "A spokesman for {group} declined to comment on the figures.",
    "Aid agencies warned that medicine was running low in {n} districts around {place}.",
    "{person} said the next {n} days would show whether the agreement holds.",
    "Hospitals in {place} said they had treated {n} people since Monday.",
    "Diplomats met late into the night with {group} to draft a joint statement.",
    "Roads out of {place} reopened on Tuesday for the first time in {n} weeks.",
    "Analysts cautioned that earlier deals with {group} collapsed within days.",
    "{person} told reporters that {n} convoys were waiting at the border.",
    "The envoy urged {group} to let humanitarian convoys reach {place}.",
    "Prices of staple food in {place} have risen by {n} percent since spring.",
    "{group} said in a statement that it had freed {n} detainees.",
    "Local journalists in {place} reported sporadic shelling overnight.",
    "{person} rejected the claims as baseless and called for an inquiry.",
    "The ministry said {n} schools in {place} would reopen next month.",
)
PLACES = (
    "Aleppo", "Mosul", "Kherson", "Khartoum", "Goma", "Rafah", "Marib", "Tripoli", "Bamako",
    "Homs", "Sirte", "Kidal", "Mekelle", "Idlib", "Donetsk", "Taiz", "Benghazi", "Gao",
    "Raqqa", "Bakhmut", "Kassala", "Bunia", "Niamey", "Hodeidah", "Deir ez-Zor", "Malakal",
)  # fmt: skip
PEOPLE = (
    "Amina Yusuf", "Pavel Orlov", "Sara Haddad", "Jonas Berg", "Leila Nasser", "Tomas Ruiz",
    "Nadia Karim", "Idris Bello", "Maya Cohen", "Omar Farouk", "Elena Petrova", "Kofi Mensah",
    "Hana Saleh", "Luis Ortega", "Ines Duarte", "Yusuf Demir", "Anya Sokolova", "Ali Rahimi",
)  # fmt: skip
GROUPS = (
    "the northern council", "the transitional authority", "the rebel coalition",
    "the interior ministry", "the regional governor", "the opposition bloc",
    "the United Nations mission", "the Red Crescent", "the army command", "the tribal elders",
)  # fmt: skip
HEADLINES = (
    "Talks resume in {place} as {group} signals flexibility",
    "Fuel shortages deepen in {place}",
    "{person} warns of worsening crisis around {place}",
    "Convoys reach {place} after weeks of delay",
    "Shelling resumes near {place} despite pledges",
    "{group} and envoys meet on prisoner exchange",
)
# The phrase the benchmark's keyword rule watches; a few new stories carry it from the start
# and some edits add it, as a real truce story would.
WATCHED = "The two sides agreed to a cease-fire starting at dawn, {person} said."
SECTIONS = ("World", "Politics", "Business", "Science", "Sport", "Opinion", "Culture")


@dataclass
class Story:
    id: int
    feed: int
    title: str
    standfirst: str
    paragraphs: list[str]
    published: float
    modified: float
    version: int = 0
    words: dict[str, str] = field(default_factory=dict)

    @property
    def etag(self) -> str:
        return f'"s{self.id}-v{self.version}"'


def fill(template: str, words: dict[str, str], rng: random.Random) -> str:
    text = template.format(n=rng.randrange(2, 400), **words)
    return text[0].upper() + text[1:]


def write_story(story_id: int, feed: int, now: float, rng: random.Random) -> Story:
    words = {"place": rng.choice(PLACES), "person": rng.choice(PEOPLE), "group": rng.choice(GROUPS)}
    # No sentence twice in one story: a story is 4 to 6 paragraphs of 3 distinct sentences.
    sentences = [fill(t, words, rng) for t in rng.sample(TEMPLATES, 3 * rng.randrange(4, 7))]
    paragraphs = [" ".join(sentences[i : i + 3]) for i in range(0, len(sentences), 3)]
    if rng.random() < 0.02:
        paragraphs.insert(1, fill(WATCHED, words, rng))
    return Story(
        id=story_id,
        feed=feed,
        title=fill(rng.choice(HEADLINES), words, rng),
        standfirst=paragraphs[0].split(". ")[0].rstrip(".") + ".",
        paragraphs=paragraphs,
        published=now,
        modified=now,
        words=words,
    )


def edit_story(story: Story, now: float, rng: random.Random) -> str:
    """One real edit, of the kinds newsrooms make; returns its kind."""
    kind = rng.choices(("number", "added", "reworded", "headline", "watched"), (5, 3, 3, 1, 1))[0]
    where = rng.randrange(len(story.paragraphs))
    paragraph = story.paragraphs[where]
    numbers = list(re.finditer(r"\d+", paragraph))
    if kind == "number" and numbers:
        hit = rng.choice(numbers)
        revised = str(int(hit.group()) + rng.randrange(1, 40))
        story.paragraphs[where] = paragraph[: hit.start()] + revised + paragraph[hit.end() :]
    elif kind == "headline":
        story.title = fill(rng.choice(HEADLINES), story.words, rng)
    elif kind == "watched":
        story.paragraphs.append(fill(WATCHED, story.words, rng))
    elif kind == "reworded":
        sentences = paragraph.split(". ")
        sentences[rng.randrange(len(sentences))] = fill(rng.choice(TEMPLATES), story.words, rng)
        story.paragraphs[where] = ". ".join(sentences)
    else:
        kind = "added"
        story.paragraphs[where] = f"{paragraph} {fill(rng.choice(TEMPLATES), story.words, rng)}"
    story.version += 1
    story.modified = now
    return kind


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


REASONS = {200: "OK", 304: "Not Modified", 400: "Bad Request", 404: "Not Found"}


class Site:
    """The stories, the feeds that list them, and the counters."""

    def __init__(self, feeds: int, articles: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.per_feed = articles
        self.stories: dict[int, Story] = {}
        self.feeds: list[deque[int]] = [deque(maxlen=articles) for _ in range(feeds)]
        self.feed_changed = [0.0] * feeds
        self.stats: Counter[str] = Counter()
        self.base = ""
        now = time.time()
        for feed in range(feeds):
            # The initial stories were published over the past day, oldest first.
            for age in range(articles, 0, -1):
                self._publish(feed, now - age * 3600 / articles * 24)

    def _publish(self, feed: int, when: float) -> Story:
        story = write_story(len(self.stories) + 1, feed, when, self.rng)
        self.stories[story.id] = story
        self.feeds[feed].appendleft(story.id)
        self.feed_changed[feed] = when
        return story

    def publish(self) -> None:
        self._publish(self.rng.randrange(len(self.feeds)), time.time())
        self.stats["stories_published"] += 1

    def edit(self) -> None:
        # Newsrooms edit fresh stories far more than old ones: weight by position in the feed.
        listed = self.feeds[self.rng.randrange(len(self.feeds))]
        weights = [1 / (1 + rank) for rank in range(len(listed))]
        story = self.stories[self.rng.choices(list(listed), weights)[0]]
        self.stats[f"edits_{edit_story(story, time.time(), self.rng)}"] += 1
        self.stats["edits"] += 1

    # ----------------------------------------------------------------- answers

    def answer(self, method: str, target: str, headers: dict[str, str]) -> Reply:
        path = target.split("?", 1)[0]
        if method == "POST" and path == "/hook":
            self.stats["hook_posts"] += 1
            return Reply(200, b"{}", (("Content-Type", "application/json"),))
        if method != "GET":
            self.stats["bad_requests"] += 1
            return Reply(400, b"GET only\n")
        if path == "/__stats":
            return Reply(
                200, json.dumps(self.stats).encode(), (("Content-Type", "application/json"),)
            )
        match = re.fullmatch(r"/feeds/f(\d+)\.xml|/news/f(\d+)/(\d+)\.html", path)
        if match is None:
            self.stats["not_found"] += 1
            return Reply(404, b"not found\n")
        if match.group(1) is not None:
            return self._feed(int(match.group(1)), headers)
        story = self.stories.get(int(match.group(3)))
        if story is None or story.feed != int(match.group(2)):
            self.stats["not_found"] += 1
            return Reply(404, b"not found\n")
        return self._page(story, headers)

    def _feed(self, feed: int, headers: dict[str, str]) -> Reply:
        if feed >= len(self.feeds):
            self.stats["not_found"] += 1
            return Reply(404, b"not found\n")
        listed = self.feeds[feed]
        etag = f'"f{feed}-{listed[0]}"'
        validators = (
            ("ETag", etag),
            ("Last-Modified", formatdate(self.feed_changed[feed], usegmt=True)),
        )
        if _fresh(headers, etag, self.feed_changed[feed]):
            self.stats["feed_304"] += 1
            return Reply(304, b"", validators)
        self.stats["feed_200"] += 1
        items = "".join(self._item(self.stories[i]) for i in listed)
        body = (
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>Loopback Wire: desk {feed}</title><link>{self.base}/</link>"
            f"<description>Stories from desk {feed}</description>"
            f"<lastBuildDate>{formatdate(self.feed_changed[feed], usegmt=True)}</lastBuildDate>"
            f"{items}</channel></rss>"
        )
        return _full(body, "application/rss+xml; charset=utf-8", validators, headers)

    def _item(self, story: Story) -> str:
        # Title and standfirst as first published: the feed changes only when a story arrives.
        link = f"{self.base}/news/f{story.feed}/{story.id}.html"
        return (
            f"<item><title>{escape(story.title)}</title><link>{link}</link>"
            f'<guid isPermaLink="false">loopback-wire-{story.id}</guid>'
            f"<pubDate>{formatdate(story.published, usegmt=True)}</pubDate>"
            f"<description>{escape(story.standfirst)}</description></item>"
        )

    def _page(self, story: Story, headers: dict[str, str]) -> Reply:
        validators = (
            ("ETag", story.etag),
            ("Last-Modified", formatdate(story.modified, usegmt=True)),
        )
        if _fresh(headers, story.etag, story.modified):
            self.stats["page_304"] += 1
            return Reply(304, b"", validators)
        self.stats["page_200"] += 1
        return _full(self._render(story), "text/html; charset=utf-8", validators, headers)

    def _render(self, story: Story) -> str:
        rng = self.rng
        now = time.time()
        minutes = max(1, int(now - story.modified) // 60)
        # "Most read": five of the latest stories (ids are 1..n, the newest highest).
        newest = len(self.stories)
        others = [
            i for i in rng.sample(range(max(1, newest - 200), newest + 1), 6) if i != story.id
        ][:5]
        boxes = "".join(
            f'<li><a href="/news/f{self.stories[i].feed}/{i}.html">{escape(self.stories[i].title)}'
            f"</a> <span>{rng.randrange(2, 900)} comments</span></li>"
            for i in others
        )
        nav = " ".join(f'<a href="/{s.lower()}">{s}</a>' for s in SECTIONS)
        body = "\n".join(f"<p>{escape(p)}</p>" for p in story.paragraphs)
        slot = f"{rng.getrandbits(48):012x}"
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{escape(story.title)} - Loopback Wire</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta property="og:title" content="{escape(story.title)}">
<link rel="canonical" href="{self.base}/news/f{story.feed}/{story.id}.html">
<script>var cms={{render:{rng.randrange(10**9)},slot:"{slot}",node:{rng.randrange(40)}}};</script>
</head><body class="desk-{story.feed} build-{rng.randrange(1000)}">
<header><a class="logo" href="/">Loopback Wire</a><nav>{nav}</nav>
<div class="ticker">{time.strftime("%A %d %B %Y, %H:%M:%S", time.gmtime(now))} GMT</div></header>
<div class="ad" id="ad-{slot}">Advertisement</div>
<main><article>
<h1>{escape(story.title)}</h1>
<div class="meta">By {story.words["person"]} in {story.words["place"]} · Updated {minutes}
minutes ago · {rng.randrange(1000, 250000):,} reads</div>
{body}
<p class="policy">Comments on this story are moderated according to our house rules.</p>
<p class="signup">Get the Morning Briefing in your inbox: sign up for our free newsletter.</p>
</article>
<aside class="most-read"><h2>Most read</h2><ol>{boxes}</ol></aside>
</main>
<footer>Copyright {2019 + rng.randrange(8)} Loopback Wire Media. All rights reserved.
<span class="perf">served in {rng.randrange(3, 700)} ms</span></footer>
</body></html>"""


def _fresh(headers: dict[str, str], etag: str, modified: float) -> bool:
    """The conditional GET matches (RFC 9110: If-None-Match wins over If-Modified-Since)."""
    tags = headers.get("if-none-match")
    if tags is not None:
        return etag in (tag.strip() for tag in tags.split(","))
    since = headers.get("if-modified-since")
    if since is None:
        return False
    try:
        return int(modified) <= parsedate_to_datetime(since).timestamp()
    except (TypeError, ValueError):
        return False


def _full(
    text: str, kind: str, validators: tuple[tuple[str, str], ...], headers: dict[str, str]
) -> Reply:
    body = text.encode("utf-8")
    extra: tuple[tuple[str, str], ...] = ()
    # Real sites compress, so the daemon pays for decompression as it would in production.
    if "gzip" in headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=1)
        extra = (("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding"))
    return Reply(200, body, (("Content-Type", kind), *validators, *extra))


# ---------------------------------------------------------------------- HTTP/1.1


async def serve_connection(
    site: Site, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            line, _, rest = head.decode("latin-1").partition("\r\n")
            parts = line.split(" ")
            headers = {}
            for field_line in rest.split("\r\n"):
                name, colon, value = field_line.partition(":")
                if colon:
                    headers[name.strip().lower()] = value.strip()
            if len(parts) != 3 or "chunked" in headers.get("transfer-encoding", ""):
                reply, close = Reply(400, b"bad request\n"), True
            else:
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    await reader.readexactly(length)  # the hook's JSON: counted, not kept
                reply = site.answer(parts[0], parts[1], headers)
                close = headers.get("connection", "").lower() == "close" or parts[2] == "HTTP/1.0"
            writer.write(_encode(reply, close))
            await writer.drain()
            if close:
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


def _encode(reply: Reply, close: bool) -> bytes:
    lines = [f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Other')}"]
    lines += [f"{name}: {value}" for name, value in reply.headers]
    lines.append(f"Date: {formatdate(usegmt=True)}")
    if reply.status != 304:
        lines.append(f"Content-Length: {len(reply.body)}")
    lines.append("Connection: close" if close else "Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body


async def trickle(rate: float, action: Callable[[], None], rng: random.Random) -> None:
    """Call ``action`` as a Poisson process of ``rate`` per second (0: never)."""
    if rate <= 0:
        return
    while True:
        await asyncio.sleep(rng.expovariate(rate))
        action()


async def run_site(args: argparse.Namespace) -> None:
    start = time.monotonic()
    site = Site(args.feeds, args.articles, args.seed)
    server = await asyncio.start_server(
        lambda r, w: serve_connection(site, r, w), "127.0.0.1", args.port, backlog=512
    )
    port = server.sockets[0].getsockname()[1]
    site.base = f"http://127.0.0.1:{port}"
    print(f"READY {port}", flush=True)
    parent = os.getppid()
    rng = random.Random(args.seed + 1)
    workers = [
        asyncio.create_task(trickle(args.edits, site.edit, rng)),
        asyncio.create_task(trickle(args.new, site.publish, rng)),
    ]
    async with server:
        while time.monotonic() - start < args.seconds and os.getppid() == parent:
            await asyncio.sleep(1)
    for worker in workers:
        worker.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--articles", type=int, default=20, help="stories per feed")
    parser.add_argument("--edits", type=float, default=2.0, help="edits per second")
    parser.add_argument("--new", type=float, default=0.5, help="new stories per second")
    parser.add_argument("--seconds", type=float, default=3600, help="stop after this long")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=20261120)
    args = parser.parse_args()
    try:
        asyncio.run(run_site(args))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
