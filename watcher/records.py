"""The plain values that cross the store boundary: what callers read and what they write.

No ORM row ever leaves :mod:`watcher.storage.store`; these frozen dataclasses do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

R = TypeVar("R")


def from_row(kind: type[R], row: Mapping[Any, Any], **extra: Any) -> R:
    """A record dataclass from a row mapping whose column names match its fields."""
    fields = kind.__dataclass_fields__  # type: ignore[attr-defined]
    return kind(**{name: row[name] for name in fields if name not in extra}, **extra)


@dataclass(frozen=True)
class FeedState:
    name: str
    url: str
    title: str
    etag: str | None
    last_modified: str | None
    last_polled_at: datetime | None
    last_success_at: datetime | None
    next_poll_at: datetime | None
    last_status: int | None
    error_streak: int
    last_error: str | None
    entries_seen: int
    disabled_at: datetime | None = None
    body_digest: str | None = None
    articles: int = 0


@dataclass(frozen=True)
class PollRecord:
    """What one poll of a feed found, written back to its row."""

    polled_at: datetime
    next_poll_at: datetime
    status: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    title: str | None = None
    error: str | None = None
    entries: int = 0
    disable: bool = False  # the feed is gone (410): stop polling it
    skipped: bool = False  # not polled (backing off or disabled): only next_poll_at changes
    # The digest of a body whose entries are all tracked (None: parse the next body, whatever
    # it is): the same bytes next time need no parsing.
    body_digest: str | None = None


@dataclass(frozen=True)
class EntriesTaken:
    """What tracking a feed's entries did."""

    new: int  # articles created
    deferred: int  # new entries left for the next polls (over the limit, or stopping)


@dataclass(frozen=True)
class ArticleState:
    id: int
    url: str
    guid: str | None
    link: str | None
    host: str
    entry_title: str
    entry_content: str
    first_seen: datetime
    last_checked: datetime | None
    next_check_at: datetime | None
    checks: int
    failures: int
    status: str
    etag: str | None
    last_modified: str | None
    current_version: int | None
    feeds: tuple[str, ...]
    last_error: str | None = None
    previous_version: int | None = None
    flips: int = 0
    gone_checks: int = 0  # checks in a row whose page answered "gone" (404, 410, front page)
    removed_at: datetime | None = None  # set while the article is taken down
    recent_checks: str = ""  # the last checks' outcomes (see watcher.pipeline.livepages)

    @property
    def removed(self) -> bool:
        return self.removed_at is not None

    @property
    def latest_change(self) -> tuple[int, int] | None:
        """The latest change as it happened: (the version live before, the one live now);
        after a revert A → B → A that is B → A. None before the article has changed."""
        if self.previous_version is None or self.current_version is None:
            return None
        return self.previous_version, self.current_version


@dataclass(frozen=True)
class ArticleSummary:
    """One line of ``watcher articles``: an article, its feeds and counts."""

    id: int
    url: str
    title: str
    status: str
    first_seen: datetime
    last_checked: datetime | None
    versions: int
    last_changed: datetime | None
    feeds: tuple[str, ...]
    alerts: int


@dataclass(frozen=True)
class VersionRecord:
    id: int
    article_id: int
    number: int
    title: str
    text: str
    content_hash: str
    source: str
    fetched_at: datetime
    last_seen_at: datetime
    times_seen: int
    # The original response in the WARC archive (None: archive off, or from the feed's text).
    warc_file: str | None = None
    warc_offset: int | None = None
    warc_length: int | None = None
    extra: str = ""
    classes: str = ""

    @property
    def warc(self) -> WarcRef | None:
        if self.warc_file is None or self.warc_offset is None or self.warc_length is None:
            return None
        return WarcRef(self.warc_file, self.warc_offset, self.warc_length)


@dataclass(frozen=True)
class RawExchange:
    """One HTTP request and its response as they went over the wire, for the WARC archive.

    ``response_headers`` are the names and values as received, in order (the HTTP parser has
    taken away only the framing: whitespace around values and, for a chunked response, the
    chunk sizes); ``body`` is the body as received, still content-encoded (gzip bytes for a
    gzip response), de-chunked.
    """

    url: str  # the URL answered (after redirects)
    request_line: bytes  # b"GET /path HTTP/1.1"
    request_headers: tuple[tuple[bytes, bytes], ...]
    http_version: str  # HTTP/1.1
    status: int
    reason: bytes
    response_headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    remote_ip: str | None = None


@dataclass(frozen=True)
class WarcRef:
    """Where a version's original response is: a WARC file of the archive (its name), the
    offset of its response record, and the length of that record with its request record."""

    file: str
    offset: int
    length: int


@dataclass(frozen=True)
class NewVersion:
    title: str
    text: str
    content_hash: str
    source: str
    extra: str = ""  # paragraphs the extractor dropped (compared, not shown)
    classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class NewAlert:
    rule: str
    event: str
    feed: str
    matched: tuple[str, ...]
    detail: dict[str, Any]


@dataclass(frozen=True)
class NewArticleEvent:
    """What a check found happened to the page besides an edit (see
    :mod:`watcher.pipeline.takedown`): ``removed``, ``restored`` or ``moved``."""

    kind: str
    reason: str
    url: str | None = None  # moved: the URL the article is fetched at from now on
    status: int | None = None  # the HTTP status that said it, when one did
    alerts: tuple[NewAlert, ...] = ()
    # moved: the canonical URLs that name this article from now on (old and new)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArticleEvent:
    """A recorded :class:`NewArticleEvent`, as history shows it."""

    id: int
    article_id: int
    kind: str
    at: datetime
    reason: str
    url: str | None
    status: int | None

    def shown(self) -> dict[str, Any]:
        """What ``watcher history --json`` and the web API show of it."""
        return {
            "kind": self.kind,
            "at": self.at,
            "reason": self.reason,
            "url": self.url,
            "status": self.status,
        }


@dataclass(frozen=True)
class CheckRecord:
    """The outcome of one article check, written in one transaction.

    Exactly one of ``version`` (new content), ``seen_again`` (content equal to an earlier
    version: a revert or an A/B flip) or neither (unchanged or failed) is set.
    """

    checked_at: datetime
    next_check_at: datetime | None
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    version: NewVersion | None = None
    alerts: tuple[NewAlert, ...] = ()
    seen_again: int | None = None  # version number
    warc: WarcRef | None = None  # the new version's original response, already on disk
    # Alerts a revert raises (with ``seen_again``): stored under the version gone back to.
    revert_alerts: tuple[NewAlert, ...] = ()
    # The page answered "gone" (404, 410, a redirect to the front page): counted towards
    # removal. A check without error resets the count; another failure leaves it.
    gone: bool = False
    events: tuple[NewArticleEvent, ...] = ()  # removed, restored, moved (in this order)
    # With ``version``: the page's line keys, counted for the furniture of ``host`` in the
    # same transaction (learned once per stored version, never for a refused duplicate).
    host: str = ""
    line_keys: frozenset[str] = frozenset()


@dataclass(frozen=True)
class FeedHealthFacts:
    """What feed health is judged on, read from the database in one go."""

    feed: str
    url: str
    error_streak: int
    last_error: str | None
    disabled: bool
    last_success_at: datetime | None
    newest_article_at: datetime | None  # when watcher first saw its newest article
    checked: int  # its articles checked within the health window
    failing: int  # of those, the ones whose last check failed


@dataclass(frozen=True)
class HealthProblem:
    feed: str
    problem: str  # errors | stale | checks
    reason: str


@dataclass(frozen=True)
class DeliveryStatus:
    """Where one alert stands with one notifier."""

    notifier: str
    state: str  # pending | retrying | sent | gave_up
    attempts: int
    next_try_at: datetime | None
    last_error: str | None
    sent_at: datetime | None


@dataclass(frozen=True)
class AlertRecord:
    id: int
    rule: str
    event: str
    feed: str
    url: str
    title: str
    version: int
    created_at: datetime
    matched: tuple[str, ...]
    detail: dict[str, Any]
    delivery_state: str  # new (not routed yet) | routed
    delivered_at: datetime | None
    article_id: int
    deliveries: tuple[DeliveryStatus, ...] = ()

    @property
    def delivered(self) -> bool:
        """Every notifier it was routed to has it (and there was at least one)."""
        return bool(self.deliveries) and all(d.state == "sent" for d in self.deliveries)


@dataclass(frozen=True)
class PendingDelivery:
    """An (alert, notifier) pair waiting in the outbox, with the alert to render."""

    id: int
    notifier: str
    state: str
    attempts: int
    created_at: datetime
    next_try_at: datetime | None
    done_targets: frozenset[str]
    alert: AlertRecord


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one send did to one delivery row."""

    id: int
    state: str
    attempts: int
    tried_at: datetime
    next_try_at: datetime | None
    last_error: str | None
    done_targets: frozenset[str]


@dataclass(frozen=True)
class DigestSet(Collection[str]):
    """A set of furniture keys held as digests: ``key in s`` hashes the key first."""

    digests: frozenset[str] = field(default_factory=frozenset)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key_digest(key) in self.digests

    def __iter__(self) -> Iterator[str]:
        return iter(self.digests)

    def __len__(self) -> int:
        return len(self.digests)


def key_digest(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).hexdigest()[:20]


@dataclass(frozen=True)
class FeedEntry:
    """One item of a feed, as published (the article page is fetched later)."""

    key: str
    guid: str | None
    link: str | None
    canonical_url: str | None
    title: str
    content_html: str
    published: datetime | None


@dataclass(frozen=True)
class BrowsedArticle:
    """One line of a list of articles (a feed's page, a search): no text, only facts."""

    id: int
    url: str
    title: str  # the newest version's headline, else the feed entry's
    status: str
    first_seen: datetime
    last_checked: datetime | None
    versions: int
    last_change_at: datetime | None  # when the newest version was first fetched
    failures: int
    last_error: str | None


@dataclass(frozen=True)
class ChangeRef:
    """A version that changed an article (number > 1): what a list of changes shows."""

    version_id: int
    article_id: int
    number: int
    title: str
    url: str
    fetched_at: datetime


@dataclass(frozen=True)
class WorkerRecord:
    """A ``watcher worker`` as ``watcher status`` shows it."""

    id: str
    host: str
    pid: int
    concurrency: int
    started_at: datetime
    last_seen: datetime
    processed: int
    failed: int
    stopped_at: datetime | None
