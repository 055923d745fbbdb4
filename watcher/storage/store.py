"""Storage: the queries the tasks need, over SQLite (WAL) or PostgreSQL with the same code.

Rows never leave this module: callers get frozen dataclasses. Each public method is one
transaction, so a crash leaves either all of a check's writes or none of them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, event, func, or_, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, create_engine, select

from watcher.errors import NoDatabase, StoreError
from watcher.records import (
    ArticleState,
    CheckRecord,
    DigestSet,
    EntriesTaken,
    FeedEntry,
    FeedState,
    PollRecord,
    VersionRecord,
    from_row,
    key_digest,
)
from watcher.storage.alerts import AlertQueries, chunks
from watcher.storage.entries import ENTRY_CHUNK, take_chunk
from watcher.storage.migrations import migrate, require_schema
from watcher.storage.schema import (
    AlertRow,
    ArticleFeedRow,
    ArticleRow,
    DeliveryRow,
    FeedRow,
    MetaRow,
    SentMessageRow,
    SiteLineRow,
    VersionRow,
)

log = logging.getLogger(__name__)

# Core tables and prepared statements for the per-check hot path.
_ARTICLE = ArticleRow.__table__  # type: ignore[attr-defined]
_VERSION = VersionRow.__table__  # type: ignore[attr-defined]
_FEED = FeedRow.__table__  # type: ignore[attr-defined]
_ARTICLE_FEED = ArticleFeedRow.__table__  # type: ignore[attr-defined]
_SITE_LINE = SiteLineRow.__table__  # type: ignore[attr-defined]
_ALERT = AlertRow.__table__  # type: ignore[attr-defined]
_META = MetaRow.__table__  # type: ignore[attr-defined]
_BUMP_SITE_LINE = (
    update(_SITE_LINE)
    .where(_SITE_LINE.c.host == bindparam("h"), _SITE_LINE.c.key_digest == bindparam("d"))
    .values(articles=_SITE_LINE.c.articles + 1)
)
_ARTICLE_BY_ID = select(_ARTICLE).where(_ARTICLE.c.id == bindparam("id"))
_FEED_ID = select(_FEED.c.id).where(_FEED.c.name == bindparam("name"))
_FEED_NAMES = (
    select(_FEED.c.name)
    .join(_ARTICLE_FEED, _ARTICLE_FEED.c.feed_id == _FEED.c.id)
    .where(_ARTICLE_FEED.c.article_id == bindparam("id"))
    .order_by(_ARTICLE_FEED.c.first_seen, _FEED.c.name)
)

# Tries of one chunk of feed entries that keeps meeting a concurrent poll of the same stories.
CHUNK_TRIES = 5
# A line recurring in this many distinct articles of one host is page furniture.
FURNITURE_MIN_ARTICLES = 3
FURNITURE_CACHE_SECONDS = 60.0
# Below this much free space a failed SQLite open is blamed on the full disk.
LOW_SPACE_BYTES = 256 * 1024
# SQLite's messages that name no cause; for these Store.open looks at the folder itself.
_VAGUE_SQLITE_ERRORS = frozenset(
    {
        "unable to open database file",
        "disk I/O error",
        "database or disk is full",
        "attempt to write a readonly database",
    }
)


def engine_url(url: str) -> str:
    """Plain ``postgresql://`` means the psycopg 3 driver (the one we depend on)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the CLI) run while the daemon writes; NORMAL sync is durable in WAL
    # mode except for the last commits before a power cut; busy_timeout rides out locks.
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "busy_timeout=10000",
        "foreign_keys=ON",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def database_label(url: str) -> str:
    """The URL as messages show it: without the password."""
    return make_url(engine_url(url)).render_as_string(hide_password=True)


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for PostgreSQL and in-memory SQLite."""
    parsed = make_url(engine_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def ensure_parent_dir(path: Path, label: str) -> None:
    """Create the folder of ``path`` (the state directory) if needed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = f"cannot create the directory {path.parent}: {os_reason(exc)}"
        raise StoreError(reason, database=label) from None


def os_reason(exc: OSError) -> str:
    """What is wrong, without Python's ``[Errno N]`` noise; when a file stands where a folder
    should be, name that file (mkdir only says "File exists")."""
    if exc.filename and isinstance(exc, FileExistsError | NotADirectoryError):
        where = Path(exc.filename)
        for ancestor in [where, *where.parents]:
            if ancestor.exists() and not ancestor.is_dir():
                blocker = "it" if ancestor == where else str(ancestor)
                return f"{blocker} is a file, not a directory"
    return exc.strerror or str(exc)


def _open_failure(url: str, exc: SQLAlchemyError | OSError) -> str:
    if isinstance(exc, OSError):
        return (f"{exc.filename}: " if exc.filename else "") + os_reason(exc)
    return _explain_sqlite_failure(url, short_reason(exc))


def _explain_sqlite_failure(url: str, reason: str) -> str:
    """SQLite's "unable to open database file" or "disk I/O error" do not say why: look."""
    path = sqlite_file(url)
    if path is None or reason not in _VAGUE_SQLITE_ERRORS:
        return reason
    if path.is_dir():
        return f"{reason} ({path} is a directory)"
    folder = path.parent
    with suppress(OSError):
        free = shutil.disk_usage(folder).free
        if free < LOW_SPACE_BYTES:
            return f"{reason} (no space left in {folder}: {free // 1024} KiB free)"
    probe = folder / f".watcher-probe-{os.getpid()}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return reason
    except OSError as exc:
        return f"{reason} (cannot create files in {folder}: {exc.strerror})"
    probe.unlink(missing_ok=True)
    return reason


def open_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for ``url``; with ``create`` a SQLite file's folder is made if missing."""
    parsed = make_url(engine_url(url))
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_file(url)
        if path is not None and create:
            ensure_parent_dir(path, database_label(url))
        engine = create_engine(parsed, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


class Store(AlertQueries):
    """All database access. Open with :meth:`open`; close with :meth:`close`."""

    def __init__(self, engine: Engine, label: str) -> None:
        self.engine = engine
        self.label = label
        self._furniture: dict[str, tuple[float, DigestSet]] = {}

    @classmethod
    def open(cls, url: str, *, writer: bool = False, create: bool = True) -> Store:
        """Open (creating or migrating the schema). A ``writer`` (``check``, ``run``) also
        proves the database takes a write, so a full disk or a read-only database stops it
        with one message at start instead of failing every check one by one.

        Without ``create`` (the read-only commands) nothing is written: no file, folder or
        schema is made, and a missing or outdated one raises :class:`NoDatabase` or
        :class:`StoreError` saying what to run."""
        label = database_label(url)
        if not create:
            _require_file(url, label)
        engine: Engine | None = None
        try:
            engine = open_engine(url, create=create)
            if create:
                migrate(engine)
            else:
                require_schema(engine, label)
            if writer:
                _probe_write(engine)
        except (SQLAlchemyError, OSError, StoreError) as exc:
            if engine is not None:
                engine.dispose()  # its pooled connection would keep the file open
            if isinstance(exc, StoreError):
                raise
            raise StoreError(_open_failure(url, exc), database=label) from None
        return cls(engine, label)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._errors(), Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A bare connection in a transaction: for the hot paths, where ORM upkeep costs more
        than the query itself (every re-check reads one article and writes one row)."""
        with self._errors(), self.engine.begin() as connection:
            yield connection

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Driver errors become one-line StoreErrors; a refused unique key stays itself (the
        callers treat it as "already stored")."""
        try:
            yield
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(short_reason(exc), database=self.label) from None

    # ------------------------------------------------------------------ feeds

    def sync_feeds(self, feeds: Iterable[tuple[str, str]]) -> None:
        """Make a row for every configured (name, url); a changed URL forgets its cache keys."""
        with self._session() as session:
            rows = {row.name: row for row in session.exec(select(FeedRow))}
            for name, url in feeds:
                row = rows.get(name)
                if row is None:
                    session.add(FeedRow(name=name, url=url))
                elif row.url != url:
                    # A new URL is a new start: no cache keys, no error streak, not disabled.
                    row.url, row.etag, row.last_modified = url, None, None
                    row.body_digest = None
                    row.error_streak, row.disabled_at = 0, None
                    session.add(row)
            session.commit()

    def feed_states(self, names: Collection[str] | None = None) -> list[FeedState]:
        with self._session() as session:
            query = select(FeedRow).order_by(col(FeedRow.name))
            if names is not None:
                query = query.where(col(FeedRow.name).in_(list(names)))
            rows = session.exec(query).all()
            # Counted for these feeds only (the index on feed_id): a poll reads its own feed's
            # state, and counting every feed's articles cost ~13 ms a poll at 20,000 articles.
            counting = select(ArticleFeedRow.feed_id, func.count()).group_by(
                col(ArticleFeedRow.feed_id)
            )
            if names is not None:
                counting = counting.where(col(ArticleFeedRow.feed_id).in_([r.id for r in rows]))
            counts = dict(session.exec(counting).all())
            return [_feed_state(row, counts.get(row.id or 0, 0)) for row in rows]

    def feed_state(self, name: str) -> FeedState:
        states = self.feed_states([name])
        if not states:
            raise StoreError(f"no feed named {name!r} in the database", database=self.label)
        return states[0]

    def record_poll(self, name: str, poll: PollRecord) -> None:
        with self._session() as session:
            row = session.exec(select(FeedRow).where(FeedRow.name == name)).one()
            row.next_poll_at = poll.next_poll_at
            if poll.skipped:
                session.add(row)
                session.commit()
                return
            row.last_polled_at = poll.polled_at
            row.last_status = poll.status
            if poll.error is None:
                row.last_success_at = poll.polled_at
                row.error_streak, row.last_error = 0, None
                row.etag, row.last_modified = poll.etag, poll.last_modified
                row.title = poll.title or row.title
                row.body_digest = poll.body_digest
                row.entries_seen += poll.entries
            else:
                row.error_streak += 1
                row.last_error = poll.error
                if poll.disable:
                    row.disabled_at = poll.polled_at
            session.add(row)
            session.commit()

    # --------------------------------------------------------------- articles

    def add_entries(self, feed_name: str, entries: Sequence[FeedEntry], now: datetime) -> int:
        """Track every entry (due at once if new); returns how many articles are new."""
        return self.take_entries(feed_name, entries, now).new

    def take_entries(
        self,
        feed_name: str,
        entries: Sequence[FeedEntry],
        now: datetime,
        *,
        max_new: int | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> EntriesTaken:
        """Track entries chunk by chunk, one transaction each: at most ``max_new`` new
        articles (the rest is ``deferred``, for the next polls), and no chunk started once
        ``stop()`` holds (its entries count as deferred too).

        Safe to call from a worker thread: each chunk takes a pooled connection of its own.
        """
        with self._transaction() as connection:
            feed_id = connection.execute(_FEED_ID, {"name": feed_name}).scalar_one()
        new = deferred = 0
        for start in range(0, len(entries), ENTRY_CHUNK):
            chunk = entries[start : start + ENTRY_CHUNK]
            if stop():
                deferred += len(chunk)  # an upper bound: known ones among them are not new
                continue
            room = None if max_new is None else max_new - new
            taken = self._take_chunk(feed_id, chunk, now, room)
            new, deferred = new + taken.new, deferred + taken.deferred
        return EntriesTaken(new, deferred)

    def _take_chunk(
        self, feed_id: int, chunk: Sequence[FeedEntry], now: datetime, room: int | None
    ) -> EntriesTaken:
        for attempt in range(1, CHUNK_TRIES + 1):
            try:
                with self._transaction() as connection:
                    return take_chunk(connection, feed_id, chunk, now, room)
            except IntegrityError:
                # Another feed's poll, in another thread, created one of these stories since
                # the chunk looked them up: its transaction rolled back; look again.
                if attempt == CHUNK_TRIES:
                    raise
                log.debug("feed %s: a chunk met a concurrent poll, taking it again", feed_id)
        raise AssertionError("unreachable")

    def due_article_ids(
        self,
        now: datetime,
        *,
        limit: int | None = None,
        feeds: Collection[str] | None = None,
        everything: bool = False,
    ) -> list[int]:
        """Tracked articles whose re-check is due (all tracked ones with ``everything``)."""
        with self._session() as session:
            query = select(ArticleRow.id).where(ArticleRow.status == "tracking")
            if not everything:
                query = query.where(col(ArticleRow.next_check_at) <= now)
            if feeds is not None:
                in_feeds = (
                    select(ArticleFeedRow.article_id)
                    .join(FeedRow, col(FeedRow.id) == col(ArticleFeedRow.feed_id))
                    .where(col(FeedRow.name).in_(list(feeds)))
                )
                query = query.where(col(ArticleRow.id).in_(in_feeds))
            query = query.order_by(col(ArticleRow.next_check_at), col(ArticleRow.id)).limit(limit)
            return [int(i) for i in session.exec(query) if i is not None]

    def article(self, article_id: int) -> ArticleState:
        with self._transaction() as connection:
            row = connection.execute(_ARTICLE_BY_ID, {"id": article_id}).mappings().first()
            if row is None:
                raise StoreError(f"no article {article_id}", database=self.label)
            return _article_state(row, _feed_names(connection, article_id))

    def find_article(self, url: str) -> ArticleState | None:
        """By canonical URL, published link or guid."""
        with self._session() as session:
            row = session.exec(
                select(ArticleRow).where(
                    or_(
                        col(ArticleRow.url) == url,
                        col(ArticleRow.link) == url,
                        col(ArticleRow.guid) == url,
                    )
                )
            ).first()
            if row is None:
                return None
            return _article_state(row.model_dump(), _feed_names(session.connection(), row.id))

    def versions(self, article_id: int, *, newest: int | None = None) -> list[VersionRecord]:
        """Versions oldest first (only the ``newest`` N when given)."""
        with self._session() as session:
            query = (
                select(VersionRow)
                .where(VersionRow.article_id == article_id)
                .order_by(col(VersionRow.number).desc())
                .limit(newest)
            )
            return [_version(row) for row in reversed(session.exec(query).all())]

    def version_by_hash(self, article_id: int, content_hash: str) -> VersionRecord | None:
        with self._session() as session:
            row = session.exec(
                select(VersionRow).where(
                    VersionRow.article_id == article_id, VersionRow.content_hash == content_hash
                )
            ).first()
            return None if row is None else _version(row)

    def record_check(self, article_id: int, check: CheckRecord) -> VersionRecord | None:
        """Write a check's outcome; returns the stored version when it made a new one.

        Returns None as well when the same content was stored concurrently (the unique key
        (article, hash) refused it): that is the idempotence guarantee, not an error.
        """
        if check.version is None:
            with self._transaction() as connection:
                _update_article(connection, article_id, check, check.seen_again)
            return None
        try:
            with self._transaction() as connection:
                stored = _insert_version(connection, article_id, check)
                _update_article(connection, article_id, check, stored.number)
                return stored
        except IntegrityError:
            log.info("article %s: this content was already stored by an earlier run", article_id)
        return self.record_check(article_id, replace(check, version=None, alerts=()))

    def retire(self, article_id: int) -> None:
        with self._session() as session:
            session.execute(
                update(ArticleRow)
                .where(col(ArticleRow.id) == article_id)
                .values(status="retired", next_check_at=None)
            )
            session.commit()

    # ------------------------------------------------------- furniture learning

    def site_furniture(self, host: str) -> DigestSet:
        """The learned furniture of a host, cached for FURNITURE_CACHE_SECONDS (another process
        may learn too); staleness is harmless because every comparison re-judges both texts
        with the same set."""
        cached = self._furniture.get(host)
        if cached is not None and time.monotonic() - cached[0] < FURNITURE_CACHE_SECONDS:
            return cached[1]
        learned = self._load_furniture(host)
        self._furniture[host] = (time.monotonic(), learned)
        return learned

    def _load_furniture(self, host: str) -> DigestSet:
        with self._session() as session:
            digests = session.exec(
                select(SiteLineRow.key_digest).where(
                    SiteLineRow.host == host, SiteLineRow.articles >= FURNITURE_MIN_ARTICLES
                )
            ).all()
            return DigestSet(frozenset(digests))

    def learn_site_lines(self, host: str, keys: Iterable[str]) -> None:
        """Count one more article of ``host`` carrying each (masked) line."""
        digests = sorted({key_digest(key) for key in keys})
        if not host or not digests:
            return
        # Core and executemany: an article has dozens of lines, and this runs for every new one.
        with self._transaction() as connection:
            found = connection.execute(
                select(_SITE_LINE.c.key_digest, _SITE_LINE.c.articles).where(
                    _SITE_LINE.c.host == host, _SITE_LINE.c.key_digest.in_(digests)
                )
            )
            counts: dict[str, int] = {digest: count for digest, count in found}
            if counts:
                connection.execute(_BUMP_SITE_LINE, [{"h": host, "d": d} for d in counts])
            fresh = [d for d in digests if d not in counts]
            if fresh:
                connection.execute(
                    _SITE_LINE.insert(),
                    [{"host": host, "key_digest": d, "articles": 1} for d in fresh],
                )
        crossed = {d for d, n in counts.items() if n + 1 >= FURNITURE_MIN_ARTICLES}
        cached = self._furniture.get(host)
        if cached is not None and crossed - cached[1].digests:
            # Keep the cache exact instead of reloading it for every new article of the host.
            self._furniture[host] = (cached[0], DigestSet(cached[1].digests | crossed))

    def prune(
        self, *, retired_before: datetime | None, messages_before: datetime
    ) -> dict[str, int]:
        """Delete articles retired (last checked) before ``retired_before`` with everything
        they own, unless one of their alerts still waits to be delivered; and the record of
        messages sent before ``messages_before`` (rate limits no longer look that far)."""
        deleted = {"articles": 0, "sent_messages": 0}
        with self._transaction() as connection:
            if retired_before is not None:
                doomed = _prunable_articles(connection, retired_before)
                for chunk in chunks(doomed, 500):
                    _delete_articles(connection, chunk)
                deleted["articles"] = len(doomed)
            sent = SentMessageRow.__table__  # type: ignore[attr-defined]
            result = connection.execute(sent.delete().where(sent.c.sent_at < messages_before))
            deleted["sent_messages"] = result.rowcount or 0
        return deleted

    def counts(self) -> dict[str, int]:
        with self._session() as session:
            return {
                name: int(session.exec(select(func.count()).select_from(table)).one())
                for name, table in (
                    ("feeds", FeedRow),
                    ("articles", ArticleRow),
                    ("versions", VersionRow),
                    ("alerts", AlertRow),
                )
            }

    def feed_totals(self) -> dict[str, dict[str, int]]:
        """Per feed name: its articles by status (tracking, retired), their versions and the
        alerts recorded for it. An article in two feeds counts in both."""
        totals: dict[str, dict[str, int]] = {}

        def add(name: str, key: str, count: int) -> None:
            empty = {"tracking": 0, "retired": 0, "versions": 0, "alerts": 0}
            totals.setdefault(name, empty)[key] = int(count)

        in_feed = _FEED.join(_ARTICLE_FEED, _ARTICLE_FEED.c.feed_id == _FEED.c.id)
        with self._transaction() as connection:
            for name, status, count in connection.execute(
                select(_FEED.c.name, _ARTICLE.c.status, func.count())
                .select_from(in_feed.join(_ARTICLE, _ARTICLE.c.id == _ARTICLE_FEED.c.article_id))
                .group_by(_FEED.c.name, _ARTICLE.c.status)
            ):
                add(name, status, count)
            for name, count in connection.execute(
                select(_FEED.c.name, func.count())
                .select_from(
                    in_feed.join(_VERSION, _VERSION.c.article_id == _ARTICLE_FEED.c.article_id)
                )
                .group_by(_FEED.c.name)
            ):
                add(name, "versions", count)
            for name, count in connection.execute(
                select(_ALERT.c.feed, func.count()).group_by(_ALERT.c.feed)
            ):
                add(name, "alerts", count)
        return totals


# ---------------------------------------------------------------------------- helpers


def _prunable_articles(connection: Connection, retired_before: datetime) -> list[int]:
    delivery = DeliveryRow.__table__  # type: ignore[attr-defined]
    waiting = (
        select(_ALERT.c.article_id)
        .select_from(_ALERT.outerjoin(delivery, delivery.c.alert_id == _ALERT.c.id))
        .where(
            or_(
                _ALERT.c.delivery_state == "new",
                delivery.c.state.in_(("pending", "retrying")),
            )
        )
    )
    query = select(_ARTICLE.c.id).where(
        _ARTICLE.c.status == "retired",
        _ARTICLE.c.last_checked < retired_before,
        _ARTICLE.c.id.not_in(waiting),
    )
    return [int(i) for i in connection.execute(query).scalars()]


def _delete_articles(connection: Connection, ids: list[int]) -> None:
    """Children first: deliveries, alerts, versions, feed links, then the articles."""
    delivery = DeliveryRow.__table__  # type: ignore[attr-defined]
    alerts = select(_ALERT.c.id).where(_ALERT.c.article_id.in_(ids))
    connection.execute(delivery.delete().where(delivery.c.alert_id.in_(alerts)))
    for table in (_ALERT, _VERSION, _ARTICLE_FEED):
        connection.execute(table.delete().where(table.c.article_id.in_(ids)))
    connection.execute(_ARTICLE.delete().where(_ARTICLE.c.id.in_(ids)))


def _require_file(url: str, label: str) -> None:
    """A SQLite file that is not there is not opened: connecting would create it."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise NoDatabase(label, f"no database file {path}")


def _probe_write(engine: Engine) -> None:
    # A row inserted and deleted in one transaction: pages really written (a WAL frame on
    # SQLite), nothing left behind. Rewriting a row with its own value would not do: SQLite
    # skips writing a cell that did not change.
    with engine.begin() as connection:
        connection.execute(_META.insert().values(key="write_probe", value=""))
        connection.execute(_META.delete().where(_META.c.key == "write_probe"))


def short_reason(exc: BaseException) -> str:
    """The first line of a driver error, without SQLAlchemy's statement dump."""
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _update_article(
    connection: Connection, article_id: int, check: CheckRecord, current: int | None
) -> None:
    values: dict[str, Any] = {
        "checks": _ARTICLE.c.checks + 1,
        "last_checked": check.checked_at,
        "next_check_at": check.next_check_at,
        "status": "tracking" if check.next_check_at is not None else "retired",
        "failures": _ARTICLE.c.failures + 1 if check.error else 0,
        "last_error": check.error,
    }
    if check.error is None:
        values.update(etag=check.etag, last_modified=check.last_modified)
    if current is not None:
        values["current_version"] = current
    if check.seen_again is not None:
        connection.execute(
            update(_VERSION)
            .where(_VERSION.c.article_id == article_id, _VERSION.c.number == check.seen_again)
            .values(times_seen=_VERSION.c.times_seen + 1, last_seen_at=check.checked_at)
        )
    connection.execute(update(_ARTICLE).where(_ARTICLE.c.id == article_id).values(**values))


def _insert_version(connection: Connection, article_id: int, check: CheckRecord) -> VersionRecord:
    """Insert the next version and its alerts; the unique (article, hash) key may refuse it."""
    assert check.version is not None
    last = connection.execute(
        select(func.max(_VERSION.c.number)).where(_VERSION.c.article_id == article_id)
    ).scalar()
    row = {
        "article_id": article_id,
        "number": (last or 0) + 1,
        "title": check.version.title,
        "text": check.version.text,
        "content_hash": check.version.content_hash,
        "source": check.version.source,
        "fetched_at": check.checked_at,
        "last_seen_at": check.checked_at,
        "times_seen": 1,
    }
    inserted = connection.execute(_VERSION.insert().values(row)).inserted_primary_key
    assert inserted is not None
    version_id = inserted[0]
    if check.alerts:
        connection.execute(
            _ALERT.insert(),
            [
                {
                    "rule": alert.rule,
                    "event": alert.event,
                    "article_id": article_id,
                    "version_id": version_id,
                    "feed": alert.feed,
                    "matched": json.dumps(list(alert.matched)),
                    "detail": json.dumps(alert.detail),
                    "created_at": check.checked_at,
                    "delivery_state": "new",
                }
                for alert in check.alerts
            ],
        )
    return _version_record({**row, "id": version_id})


def _feed_names(connection: Connection, article_id: int | None) -> tuple[str, ...]:
    return tuple(connection.execute(_FEED_NAMES, {"id": article_id}).scalars())


def _feed_state(row: FeedRow, articles: int) -> FeedState:
    return from_row(FeedState, row.model_dump(), articles=articles)


def _article_state(row: Mapping[Any, Any], feeds: tuple[str, ...]) -> ArticleState:
    return from_row(ArticleState, row, feeds=feeds)


def _version(row: VersionRow) -> VersionRecord:
    return _version_record(row.model_dump())


def _version_record(row: Mapping[Any, Any]) -> VersionRecord:
    return from_row(VersionRecord, row)
