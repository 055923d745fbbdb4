"""Feed entries into tracked articles, a chunk at a time (for the store's ``take_entries``).

A feed may hold 50,000 entries. Looking each one up with its own ORM queries cost 30 s per
re-poll, so a chunk of entries is matched against the articles it could name with one query,
in memory, keeping the identity rule of one entry at a time: an entry is the article whose
URL is its canonical link, else one whose URL or guid is its key or guid (one story in two
feeds is one article); a URL a moved article had or has (an alias) names that article.
Only articles whose entry title, content or link changed are written, and each article gets
its feed link row once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, and_, bindparam, case, or_, select, update

from watcher.records import EntriesTaken, FeedEntry
from watcher.storage.events import aliases_of
from watcher.storage.schema import ArticleFeedRow, ArticleRow

_ARTICLE = ArticleRow.__table__  # type: ignore[attr-defined]
_ARTICLE_FEED = ArticleFeedRow.__table__  # type: ignore[attr-defined]
_UPDATE_ENTRY = (
    update(_ARTICLE)
    .where(_ARTICLE.c.id == bindparam("article_id"))
    .values(
        entry_title=bindparam("title"),
        entry_content=bindparam("content"),
        link=bindparam("link"),
        # The feed says the story changed: look now, not when the schedule next comes due
        # (the pass that polled the feed checks due articles next). Retired ones stay so.
        next_check_at=case(
            (and_(_ARTICLE.c.status == "tracking", bindparam("retitled")), bindparam("now")),
            else_=_ARTICLE.c.next_check_at,
        ),
    )
)
# Entries per transaction: a chunk holds SQLite's write lock for tens of milliseconds, so the
# event loop's own writes wait no longer than that; a few queries per chunk stay few in all.
ENTRY_CHUNK = 500
# Created articles sort after every stored one, in the order they were made, as their ids
# would: the guid rule then picks the same article as it would with one entry at a time.
_UNSTORED_RANK = 1 << 62


def host_of(url: str) -> str:
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.")


@dataclass
class _Article:
    """An article as the entries of one chunk see it: stored (``id``) or made by the chunk."""

    rank: int
    url: str
    guid: str | None
    link: str | None
    title: str
    content: str
    id: int | None = None
    host: str = ""  # only for a created one: stored articles keep theirs
    changed: bool = False
    retitled: bool = False  # the headline changed: check it now
    aliases: set[str] = field(default_factory=set)  # of its URLs, those a chunk entry names

    def take(self, entry: FeedEntry) -> None:
        # A story whose slug changed keeps its identity (guid) but is fetched at its new link;
        # a link it moved away from (an alias) does not take it back there.
        link = entry.link or self.link
        if entry.canonical_url in self.aliases:
            link = self.link
        if (entry.title, entry.content_html, link) != (self.title, self.content, self.link):
            # Only the headline: an article in two feeds gets a different summary from each,
            # and that flip would make it due on every poll.
            self.retitled = self.retitled or (entry.title != self.title and self.id is not None)
            self.title, self.content, self.link = entry.title, entry.content_html, link
            self.changed = True


@dataclass
class _Chunk:
    """The stored articles a chunk's entries could name, and what the chunk makes of them."""

    by_url: dict[str, _Article] = field(default_factory=dict)
    by_guid: defaultdict[str, list[_Article]] = field(default_factory=lambda: defaultdict(list))
    created: list[_Article] = field(default_factory=list)
    touched: dict[int, _Article] = field(default_factory=dict)  # by id(), in entry order

    @classmethod
    def load(cls, connection: Connection, entries: Sequence[FeedEntry]) -> _Chunk:
        names = sorted({name for e in entries for name in (e.canonical_url, e.key, e.guid) if name})
        chunk = cls()
        aliases = aliases_of(connection, names)
        query = select(
            _ARTICLE.c.id,
            _ARTICLE.c.url,
            _ARTICLE.c.guid,
            _ARTICLE.c.link,
            _ARTICLE.c.entry_title,
            _ARTICLE.c.entry_content,
        ).where(
            or_(
                _ARTICLE.c.url.in_(names),
                _ARTICLE.c.guid.in_(names),
                _ARTICLE.c.id.in_(sorted(set(aliases.values()))),
            )
        )
        by_id: dict[int, _Article] = {}
        for row in connection.execute(query).mappings():
            by_id[row["id"]] = article = _stored_article(row)
            chunk._index(article)
        for url, article_id in aliases.items():
            if article_id in by_id:
                by_id[article_id].aliases.add(url)
                chunk.by_url.setdefault(url, by_id[article_id])
        return chunk

    def _index(self, article: _Article) -> None:
        self.by_url[article.url] = article
        if article.guid:
            self.by_guid[article.guid].append(article)

    def find(self, entry: FeedEntry) -> _Article | None:
        """The canonical link first, then the key or guid as URL or guid (the oldest match)."""
        if entry.canonical_url and (found := self.by_url.get(entry.canonical_url)):
            return found
        names = {entry.key, *([entry.guid] if entry.guid else [])}
        matches = [a for name in names for a in (self.by_url.get(name), *self.by_guid[name]) if a]
        return min(matches, key=lambda a: a.rank, default=None)

    def create(self, entry: FeedEntry) -> _Article:
        article = _Article(
            _UNSTORED_RANK + len(self.created),
            url=entry.canonical_url or entry.key,
            guid=entry.guid,
            link=None,
            title="",
            content="",
            host=host_of(entry.link or entry.canonical_url or ""),
        )
        self.created.append(article)
        self._index(article)
        return article

    def touch(self, article: _Article, entry: FeedEntry) -> None:
        article.take(entry)
        self.touched.setdefault(id(article), article)


def _stored_article(row: Mapping[Any, Any]) -> _Article:
    return _Article(
        rank=row["id"],
        url=row["url"],
        guid=row["guid"],
        link=row["link"],
        title=row["entry_title"],
        content=row["entry_content"],
        id=row["id"],
    )


def take_chunk(
    connection: Connection,
    feed_id: int,
    entries: Sequence[FeedEntry],
    now: datetime,
    room: int | None,
) -> EntriesTaken:
    """Track one chunk of entries in the caller's transaction, creating at most ``room`` new
    articles (None: no limit); new entries past it are left untouched, for a later poll."""
    chunk = _Chunk.load(connection, entries)
    deferred = 0
    for entry in entries:
        article = chunk.find(entry)
        if article is None:
            if room is not None and len(chunk.created) >= room:
                deferred += 1
                continue
            article = chunk.create(entry)
        chunk.touch(article, entry)
    _insert_created(connection, chunk.created, now)
    _update_changed(connection, [a for a in chunk.touched.values() if a.id and a.changed], now)
    _link_to_feed(connection, feed_id, [a.id for a in chunk.touched.values() if a.id], now)
    return EntriesTaken(len(chunk.created), deferred)


def _insert_created(connection: Connection, created: list[_Article], now: datetime) -> None:
    """Insert the new articles (due at once) and learn their ids."""
    if not created:
        return
    rows = [
        ArticleRow(
            url=a.url,
            guid=a.guid,
            link=a.link,
            host=a.host,
            entry_title=a.title,
            entry_content=a.content,
            first_seen=now,
            next_check_at=now,
        ).model_dump(exclude={"id"})
        for a in created
    ]
    connection.execute(_ARTICLE.insert(), rows)
    by_url = {a.url: a for a in created}
    found = connection.execute(
        select(_ARTICLE.c.id, _ARTICLE.c.url).where(_ARTICLE.c.url.in_(list(by_url)))
    )
    for article_id, url in found:
        by_url[url].id = article_id


def _update_changed(connection: Connection, changed: list[_Article], now: datetime) -> None:
    if changed:
        connection.execute(
            _UPDATE_ENTRY,
            [
                {
                    "article_id": a.id,
                    "title": a.title,
                    "content": a.content,
                    "link": a.link,
                    "now": now,
                    "retitled": a.retitled,
                }
                for a in changed
            ],
        )


def _link_to_feed(
    connection: Connection, feed_id: int, article_ids: list[int | None], now: datetime
) -> None:
    if not article_ids:
        return
    linked = set(
        connection.execute(
            select(_ARTICLE_FEED.c.article_id).where(
                _ARTICLE_FEED.c.feed_id == feed_id, _ARTICLE_FEED.c.article_id.in_(article_ids)
            )
        ).scalars()
    )
    missing = [i for i in article_ids if i not in linked]
    if missing:
        connection.execute(
            _ARTICLE_FEED.insert(),
            [{"article_id": i, "feed_id": feed_id, "first_seen": now} for i in missing],
        )
