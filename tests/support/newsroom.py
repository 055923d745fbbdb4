"""A simulated news site on a LoopbackServer: feeds (RSS, Atom, JSON Feed) and article pages
dressed in the furniture real sites have — a nav bar, a clock, "updated N minutes ago", view
and comment counters, a rotating "most read" box, related links, newsletter and comment-policy
lines, ad slots with random ids and a copyright year — all of which change on every request.

Tests edit the stories (``newsroom.edit(slug, ...)``); only those edits must ever show up.
The pages are rendered by :func:`watcher.demo.newsroom.render_page`, as ``watcher demo``'s are.
"""

from __future__ import annotations

import html
import json
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime

from support.server import LoopbackServer, Reply, Request
from watcher.demo.newsroom import render_page

_SENTENCES = [
    "Officials in the region said the talks had entered a delicate phase after weeks of "
    "shuttle diplomacy between the two delegations.",
    "Residents described long queues for bread and fuel, and said electricity came on for "
    "only a few hours each day.",
    "A spokesman for the ministry declined to comment on the figures, saying an investigation "
    "was under way and that more details would follow.",
    "Aid agencies have warned that supplies of medicine are running low in several districts "
    "and that hospitals are struggling to cope with the wounded.",
    "Diplomats from three countries met late into the night to draft the text of a joint "
    "statement, according to people familiar with the discussions.",
    "The United Nations envoy urged all parties to respect the agreement and to allow "
    "humanitarian convoys to reach besieged neighbourhoods.",
    "Analysts cautioned that previous agreements had collapsed within days, leaving civilians "
    "exposed to renewed shelling and air strikes.",
    "Local journalists reported that roads leading out of the city had been reopened on "
    "Tuesday morning for the first time in a month.",
]


@dataclass
class Story:
    slug: str
    title: str
    paragraphs: list[str]
    published: datetime
    feeds: tuple[str, ...] = ("rss", "atom", "json")

    def path(self) -> str:
        return f"/news/{self.slug}.html"


def make_story(slug: str, title: str, seed: int, paragraphs: int = 7) -> Story:
    rng = random.Random(seed)
    body = [" ".join(rng.sample(_SENTENCES, 3)) for _ in range(paragraphs)]
    body[0] = f"{title}: " + body[0]
    return Story(slug, title, body, datetime(2026, 11, 20, 8, 0, tzinfo=UTC))


@dataclass
class Newsroom:
    """Serves the stories; call :meth:`attach` once, then edit stories between checks."""

    server: LoopbackServer
    stories: dict[str, Story] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self) -> Newsroom:
        self.server.route("/rss.xml", self._rss)
        self.server.route("/atom.xml", self._atom)
        self.server.route("/feed.json", self._json)
        return self

    def add(self, story: Story) -> Story:
        with self.lock:
            self.stories[story.slug] = story
        self.server.route(story.path(), lambda request, slug=story.slug: self._page(slug))
        return story

    def edit(
        self, slug: str, *, title: str | None = None, paragraphs: list[str] | None = None
    ) -> None:
        with self.lock:
            story = self.stories[slug]
            if title is not None:
                story.title = title
            if paragraphs is not None:
                story.paragraphs = list(paragraphs)

    def url(self, path: str) -> str:
        return self.server.url(path)

    # ----------------------------------------------------------------- feeds

    def _listed(self, feed: str) -> list[Story]:
        with self.lock:
            return [s for s in self.stories.values() if feed in s.feeds]

    def _rss(self, _request: Request) -> Reply:
        items = "".join(
            f"<item><title>{html.escape(s.title)}</title>"
            f"<link>{self.url(s.path())}?utm_source=rss&amp;utm_medium=feed</link>"
            f'<guid isPermaLink="false">story-{s.slug}</guid>'
            f"<pubDate>{format_datetime(s.published)}</pubDate>"
            f"<description>{html.escape(s.paragraphs[0])}</description></item>"
            for s in self._listed("rss")
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Loopback News</title><link>{self.url('/')}</link>"
            f"<description>Test news</description>{items}</channel></rss>"
        )
        return Reply(body=body, headers={"Content-Type": "application/rss+xml; charset=utf-8"})

    def _atom(self, _request: Request) -> Reply:
        entries = "".join(
            f"<entry><title>{html.escape(s.title)}</title>"
            f'<link rel="alternate" href="{self.url(s.path())}#top"/>'
            f"<id>story-{s.slug}</id><updated>{s.published.isoformat()}</updated>"
            f"<summary>{html.escape(s.paragraphs[0])}</summary></entry>"
            for s in self._listed("atom")
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>Loopback News (Atom)</title><id>{self.url('/atom.xml')}</id>"
            f"<updated>2026-11-20T08:00:00Z</updated>{entries}</feed>"
        )
        return Reply(body=body, headers={"Content-Type": "application/atom+xml"})

    def _json(self, _request: Request) -> Reply:
        feed = {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Loopback News (JSON)",
            "items": [
                {
                    "id": f"story-{s.slug}",
                    "url": self.url(s.path()),
                    "title": s.title,
                    "content_text": s.paragraphs[0],
                    "date_published": s.published.isoformat(),
                }
                for s in self._listed("json")
            ],
        }
        return Reply(body=json.dumps(feed), headers={"Content-Type": "application/feed+json"})

    # ----------------------------------------------------------------- pages

    def _page(self, slug: str) -> Reply:
        with self.lock:
            story = self.stories[slug]
            title, paragraphs = story.title, list(story.paragraphs)
            self.requests += 1
        return Reply(
            body=self._render(title, paragraphs),
            headers={"Content-Type": "text/html; charset=utf-8"},
        )

    def _render(self, title: str, paragraphs: list[str]) -> str:
        return render_page(title, paragraphs, self.rng)


def harness_config(
    room: Newsroom, database: str, hook: str, *, head: str = "", fetch: str = "", every: str = "1s"
) -> str:
    """The config of a fault harness against ``room``: its three feeds, articles re-checked
    ``every``, a catch-all rule per event sent to ``hook``. ``head`` adds top-level keys (a
    queue), ``fetch`` keys of the fetch section.

    Live pages are off: a harness edits stories on most passes, and a live page's alerts
    would wait for their digest, where every alert must arrive before the harness looks."""
    return f"""
database: "{database}"
{head}allow_private_networks: true
defaults: {{interval: 1s, recheck: [{{until: 1d, every: {every}}}]}}
fetch: {{deadline: 10s{fetch}}}
feeds:
  - {{name: rss, url: "{room.url("/rss.xml")}"}}
  - {{name: atom, url: "{room.url("/atom.xml")}"}}
  - {{name: json, url: "{room.url("/feed.json")}"}}
notifiers: {{hook: "{hook}"}}
delivery: {{retry: {{first: 1s, max: 2s}}}}
live_pages: {{enabled: false}}
rules:
  - {{name: all, events: [new], notify: [hook]}}
  - {{name: edits, events: [changed], notify: [hook]}}
"""
