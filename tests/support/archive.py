"""A database with a history: feeds, articles, versions that edit each other, alerts.
Written through the Store's own writing methods (what `watcher run` calls), so every row is
what the daemon would have stored. Used by the web view's tests and bench/web_bench.py."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from watcher.records import CheckRecord, FeedEntry, NewAlert, NewVersion
from watcher.storage.store import Store

START = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> [link](javascript:alert(2))'


@dataclass(frozen=True)
class Filled:
    feeds: list[str]
    article_ids: list[int]


def story(article: int, version: int, words: int, hostile: bool) -> tuple[str, str]:
    """A headline and a body; each version changes a number, a quote and a sentence."""
    title = f"Talks resume in city {article} (update {version})"
    if hostile:
        title += " " + HOSTILE
    paragraphs = [
        f"At least {10 + version} people were hurt in district {article}, officials said.",
        f'"We will {"hold" if version % 2 else "keep"} the line," the mayor told reporters.',
    ]
    filler = " ".join(f"word{(article * 7 + i) % 97}" for i in range(words))
    paragraphs += [filler[i : i + 400] for i in range(0, len(filler), 400)]
    paragraphs.append(f"This paragraph was added in version {version}.")
    if hostile:
        paragraphs.append(f'Injected: {HOSTILE} <a href="javascript:alert(3)">click</a>')
    return title, "\n".join(paragraphs)


def fill(
    store: Store,
    *,
    feeds: int = 2,
    articles: int = 3,
    versions: int = 3,
    words: int = 120,
    hostile: bool = False,
    rule: str = "edits",
) -> Filled:
    """``articles`` per feed with ``versions`` each; every edit raises one alert of ``rule``."""
    names = [f"desk-{i}" for i in range(feeds)]
    store.sync_feeds((name, f"http://127.0.0.1:9/{name}.xml") for name in names)
    ids: list[int] = []
    for f, name in enumerate(names):
        entries = [
            FeedEntry(
                key=f"http://news.example.org/{name}/{a}",
                guid=None,
                # A feed may carry a script link: the article page must not make it clickable.
                link="javascript:alert(4)"
                if hostile and a == 0
                else f"http://news.example.org/{name}/{a}",
                canonical_url=f"http://news.example.org/{name}/{a}",
                title=f"Entry {a}",
                content_html="",
                published=None,
            )
            for a in range(articles)
        ]
        store.add_entries(name, entries, START)
        for a in range(articles):
            article = store.find_article(f"http://news.example.org/{name}/{a}")
            assert article is not None
            ids.append(article.id)
            for v in range(1, versions + 1):
                _store_version(store, article.id, name, f * articles + a, v, words, hostile, rule)
    return Filled(names, ids)


def _store_version(
    store: Store, article_id: int, feed: str, n: int, v: int, words: int, hostile: bool, rule: str
) -> None:
    title, text = story(n, v, words, hostile)
    when = START + timedelta(minutes=n * 10 + v)
    alerts = ()
    if v > 1:
        detail = {
            "previous": {"version": v - 1, "fetched_at": when.isoformat()},
            "added": [f"{10 + v} people"],
            "removed": [f"{9 + v} people"],
        }
        alerts = (NewAlert(rule, "changed", feed, ("people",), detail),)
    check = CheckRecord(
        checked_at=when,
        next_check_at=when + timedelta(hours=1),
        version=NewVersion(title, text, hashlib.sha1(text.encode()).hexdigest(), "page"),
        alerts=alerts,
    )
    store.record_check(article_id, check)
