"""Hostile headers through real passes: ETag, Last-Modified, Retry-After, Location and
Content-Type as a server on loopback sends them, byte for byte (support.raw sends what
http.server refuses to). Every case checks what a user relies on: no traceback in the log,
the failure (if any) recorded on the feed's or the article's row, the next pass polling and
checking again, and a later good answer replacing a bad validator.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from support.clock import Clock
from support.processes import daemon, stop, wait_for
from support.raw import RawHeader, RawServer, raw_reply
from support.wire import HTML_TYPE, PAGE, RSS_TYPE, STORY, feed_body, make_config, tracebacks
from watcher.config.models import Config
from watcher.records import ArticleState
from watcher.storage.store import Store
from watcher.tasks import PassSummary, PollOutcome, open_context, run_pass

INTERVAL = timedelta(minutes=10)
RECHECK = timedelta(hours=1)
GOOD_TAG = '"v1-good"'
GOOD_DATE = "Mon, 03 Apr 2023 01:02:03 GMT"


@dataclass
class Site:
    """A feed at /feed.xml whose one item links to /page.html, both on a raw server."""

    raw: RawServer

    @property
    def feed_url(self) -> str:
        return self.raw.url("/feed.xml")

    def feed(self, status: int = 200, headers: Sequence[RawHeader] = ()) -> None:
        body = feed_body(self.raw.url("/page.html")) if status == 200 else b""
        self.raw.route("/feed.xml", raw_reply(status, [("Content-Type", RSS_TYPE), *headers], body))

    def page(self, status: int = 200, headers: Sequence[RawHeader] = ()) -> None:
        body = PAGE if status == 200 else b""
        self.raw.route(
            "/page.html", raw_reply(status, [("Content-Type", HTML_TYPE), *headers], body)
        )

    def sent(self, path: str) -> list[tuple[str | None, str | None]]:
        """(If-None-Match, If-Modified-Since) of every request to ``path``."""
        return [
            (r.headers.get("if-none-match"), r.headers.get("if-modified-since"))
            for r in self.raw.requests_to(path)
        ]


@pytest.fixture
def site() -> Iterator[Site]:
    with RawServer() as raw:
        yield Site(raw)


class Passes:
    """Whole passes on one store with a hand-set clock; each moves the clock two days on,
    past any back-off or re-check, so the next pass must poll and check again."""

    def __init__(self, config: Config, store: Store, caplog: pytest.LogCaptureFixture) -> None:
        self.config, self.store, self.caplog = config, store, caplog
        self.clock = Clock()
        caplog.set_level(logging.INFO)

    def run(self) -> PassSummary:
        async def go() -> PassSummary:
            async with open_context(self.config, self.store, self.clock) as ctx:
                return await run_pass(ctx)

        self.started = self.clock.now
        summary = asyncio.run(go())
        assert tracebacks(self.caplog.records) == []
        self.clock.now += timedelta(days=2)
        return summary

    def article(self) -> ArticleState:
        """The one article the feed has."""
        (article_id,) = self.store.due_article_ids(self.clock.now, everything=True)
        return self.store.article(article_id)

    def warned(self, url: str, header: str) -> bool:
        return any(
            r.levelno == logging.WARNING and url in r.getMessage() and header in r.getMessage()
            for r in self.caplog.records
        )


def poll_of(summary: PassSummary) -> PollOutcome:
    (poll,) = summary.polls
    return poll


def check_status(summary: PassSummary) -> str:
    (check,) = summary.checks
    return check.status


# --- validators --------------------------------------------------------------------------

BAD_VALIDATORS: dict[str, tuple[str, list[RawHeader]]] = {
    "etag-utf-8": ("ETag", [("ETag", b'"caf\xc3\xa9"')]),
    "etag-obs-text": ("ETag", [("ETag", b'"caf\xe9"')]),
    "etag-unquoted": ("ETag", [("ETag", b"abc def")]),
    "etag-tab-inside": ("ETag", [("ETag", b'"a\tb"')]),
    "etag-twice-different": ("ETag", [("ETag", b'"a"'), ("ETag", b'"b"')]),
    "etag-control-character": ("ETag", [("ETag", b'"a\x01b"')]),
    "last-modified-utf-8": ("Last-Modified", [("Last-Modified", "Mon, 03 Apr 2023 01:02:03 GMTé")]),
    "last-modified-obs-text": ("Last-Modified", [("Last-Modified", b"Mon, 03 Apr 2023 \xff")]),
    "last-modified-control-character": (
        "Last-Modified",
        [("Last-Modified", b"Mon, 03 Apr 2023\x7f 01:02:03 GMT")],
    ),
    "last-modified-not-a-date": ("Last-Modified", [("Last-Modified", "yesterday")]),
    "last-modified-year-99999": (
        "Last-Modified",
        [("Last-Modified", "Mon, 03 Apr 99999 01:02:03")],
    ),
}
GOOD_VALIDATORS: list[RawHeader] = [("ETag", GOOD_TAG), ("Last-Modified", GOOD_DATE)]


@pytest.mark.parametrize("where", ["feed", "page"])
@pytest.mark.parametrize("case", list(BAD_VALIDATORS))
def test_a_bad_validator_is_dropped_and_a_good_one_replaces_it(
    site: Site, store: Store, caplog: pytest.LogCaptureFixture, where: str, case: str
) -> None:
    header, bad = BAD_VALIDATORS[case]
    serve = site.feed if where == "feed" else site.page
    site.feed(), site.page()
    serve(headers=bad)
    passes = Passes(make_config(site.feed_url), store, caplog)
    path = f"/{where}.xml" if where == "feed" else "/page.html"

    first = passes.run()
    assert poll_of(first).status == "ok" and check_status(first) == "new"
    assert passes.warned(site.raw.url(path), header)
    row = store.feed_state("wire") if where == "feed" else passes.article()
    assert (row.etag, row.last_modified) == (None, None)

    serve(headers=GOOD_VALIDATORS)
    second = passes.run()  # polled and checked again, unconditionally
    assert poll_of(second).status == "ok" and check_status(second) == "unchanged"
    row = store.feed_state("wire") if where == "feed" else passes.article()
    assert (row.etag, row.last_modified) == (GOOD_TAG, GOOD_DATE)

    passes.run()
    assert site.sent(path) == [(None, None), (None, None), (GOOD_TAG, GOOD_DATE)]


def test_stored_validators_that_cannot_be_sent_heal(
    site: Site, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    # Rows written before validators were checked may hold values httpx cannot encode.
    site.feed(headers=GOOD_VALIDATORS), site.page(headers=GOOD_VALIDATORS)
    passes = Passes(make_config(site.feed_url), store, caplog)
    passes.run()
    for table in ("feed", "article"):
        with store.engine.begin() as connection:
            connection.execute(
                text(f"UPDATE {table} SET etag = :e, last_modified = :m"),
                {"e": '"café"', "m": "Mon, 03 Apr 2023 01:02:03 GMT\x01"},
            )
    fresh = [("ETag", '"v2"'), ("Last-Modified", "Tue, 04 Apr 2023 01:02:03 GMT")]
    site.feed(headers=fresh), site.page(headers=fresh)

    healed = passes.run()

    assert poll_of(healed).status == "ok" and check_status(healed) == "unchanged"
    assert site.sent("/feed.xml")[-1] == site.sent("/page.html")[-1] == (None, None)
    for row in (store.feed_state("wire"), passes.article()):
        assert (row.etag, row.last_modified) == ('"v2"', "Tue, 04 Apr 2023 01:02:03 GMT")
        assert row.last_error is None
    assert passes.warned(site.feed_url, "stored ETag")


def test_a_stored_date_in_an_old_format_is_sent_as_imf_fixdate(
    site: Site, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    site.feed(headers=[("Last-Modified", "Monday, 03-Apr-23 01:02:03 GMT")]), site.page()
    passes = Passes(make_config(site.feed_url), store, caplog)
    passes.run()
    assert store.feed_state("wire").last_modified == GOOD_DATE
    passes.run()
    assert site.sent("/feed.xml")[-1] == (None, GOOD_DATE)


# --- Retry-After -------------------------------------------------------------------------

RETRY_AFTERS = {
    "superscript-two": (b"\xc2\xb2", INTERVAL),  # str.isdigit() says yes, float() says no
    "arabic-indic-digits": ("٣٠٠", INTERVAL),
    "exponent": ("1e9", INTERVAL),
    "negative": ("-5", INTERVAL),
    "fraction": ("1.5", INTERVAL),
    "twenty-digits": ("99999999999999999999", timedelta(days=1)),
    "five-thousand-digits": ("9" * 5000, timedelta(days=1)),
    "date-in-year-9999": ("Fri, 31 Dec 9999 23:59:59 GMT", timedelta(days=1)),
    "date-in-the-past": ("Thu, 01 Jan 1970 00:00:00 GMT", INTERVAL),
    "two-hours": ("7200", timedelta(hours=2)),
}


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("case", list(RETRY_AFTERS))
def test_retry_after_is_read_or_ignored_never_a_crash(
    site: Site, store: Store, caplog: pytest.LogCaptureFixture, status: int, case: str
) -> None:
    value, wait = RETRY_AFTERS[case]
    site.feed(status, [("Retry-After", value)])
    passes = Passes(make_config(site.feed_url), store, caplog)
    poll = poll_of(passes.run())
    state = store.feed_state("wire")
    assert poll.status == "failed" and f"HTTP {status}" in (state.last_error or "")
    assert state.error_streak == 1 and state.next_poll_at == passes.started + wait
    assert poll_of(passes.run()).status == "failed"
    assert store.feed_state("wire").error_streak == 2
    assert len(site.raw.requests_to("/feed.xml")) == 2


# --- 304 without validators ----------------------------------------------------------------


def test_an_article_answering_304_at_first_sight_starts_from_the_feed_text(
    site: Site, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    site.feed(), site.page(304)
    passes = Passes(make_config(site.feed_url), store, caplog)
    first = passes.run()
    assert check_status(first) == "new"
    (version,) = store.versions(passes.article().id)
    assert version.source == "feed" and STORY in version.text
    assert store.counts()["alerts"] == 1
    assert any("304" in r.getMessage() for r in caplog.records)


def test_a_feed_answering_304_without_validators_is_a_failed_poll(
    site: Site, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    site.feed(304)
    passes = Passes(make_config(site.feed_url), store, caplog)
    poll = poll_of(passes.run())
    state = store.feed_state("wire")
    assert poll.status == "failed" and "HTTP 304: Not Modified to a request without validators" in (
        state.last_error or ""
    )
    assert state.error_streak == 1 and state.last_status == 304
    assert poll_of(passes.run()).status == "failed" and len(site.sent("/feed.xml")) == 2


# --- Location ------------------------------------------------------------------------------

BAD_LOCATIONS = {
    "space-inside": (b"/next feed.xml", "whitespace or control characters"),
    # httpx parses Location before watcher sees it, and refuses these itself.
    "tab-inside": (b"/next\tfeed.xml", "Invalid URL in location header: .*non-printable"),
    "control-character": (b"/next\x01feed.xml", "Invalid URL in location header: .*non-printable"),
    "unclosed-ipv6-host": (b"http://[::1/feed.xml", "Invalid URL in location header"),
    "port-out-of-range": (b"http://127.0.0.1:99999999/feed.xml", "invalid port 99999999"),
    "other-scheme": (b"javascript:alert(1)", "invalid URL"),
    "file-scheme": (b"file:///etc/passwd", "unsupported URL"),
    "two-different": ([b"/a.xml", b"/b.xml"], "2 different Location headers"),
}


@pytest.mark.parametrize("case", list(BAD_LOCATIONS))
def test_a_redirect_to_a_bad_location_is_a_recorded_failure(
    site: Site, store: Store, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    location, reason = BAD_LOCATIONS[case]
    values = location if isinstance(location, list) else [location]
    site.raw.route("/feed.xml", raw_reply(302, [("Location", v) for v in values]))
    passes = Passes(make_config(site.feed_url), store, caplog)
    poll = poll_of(passes.run())
    state = store.feed_state("wire")
    assert poll.status == "failed" and state.last_error == poll.error
    assert re.search(reason, state.last_error or "", re.IGNORECASE), state.last_error
    assert poll_of(passes.run()).status == "failed" and store.feed_state("wire").error_streak == 2


def test_a_non_ascii_location_is_percent_encoded_and_followed(
    site: Site, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    site.raw.route("/feed.xml", raw_reply(301, [("Location", "/café.xml")]))
    site.raw.route("/caf%C3%A9.xml", raw_reply(200, [], feed_body(site.raw.url("/page.html"))))
    site.page()
    passes = Passes(make_config(site.feed_url), store, caplog)
    assert poll_of(passes.run()).status == "ok"


# --- Content-Type --------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["x-no-such-charset", "rot13", "undefined", "utf-8\x7f"])
def test_an_unknown_charset_is_ignored_and_the_text_still_read(
    site: Site, store: Store, caplog: pytest.LogCaptureFixture, label: str
) -> None:
    accented = PAGE.replace(b"Bridge reopens", "Pont rouvert à Zürich".encode())
    content_type = f"text/html; charset={label}"
    site.raw.route("/page.html", raw_reply(200, [("Content-Type", content_type)], accented))
    site.raw.route(
        "/feed.xml",
        raw_reply(
            200,
            [("Content-Type", f"{RSS_TYPE}; charset={label}")],
            feed_body(site.raw.url("/page.html")),
        ),
    )
    passes = Passes(make_config(site.feed_url), store, caplog)
    assert check_status(passes.run()) == "new"
    (version,) = store.versions(passes.article().id)
    assert version.source == "page" and version.title == "Pont rouvert à Zürich"
    assert passes.warned(site.raw.url("/page.html"), "Content-Type")


# --- crashes -------------------------------------------------------------------------------


def test_a_crashing_check_is_recorded_on_the_article_and_named_by_url(
    site: Site, store: Store, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.feed(), site.page()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("extractor bug")

    # A bug cannot be provoked from outside on purpose: stand one in for the extractor.
    monkeypatch.setattr("watcher.tasks.cpu.extract_article", broken)  # inline: a first page
    passes = Passes(make_config(site.feed_url), store, caplog)
    (check,) = passes.run().checks
    article = passes.article()
    assert (check.status, check.url) == ("failed", article.url)
    assert article.failures == 1 and article.last_error == check.error
    assert check.error == "internal error: RuntimeError: extractor bug"
    assert article.next_check_at == passes.started + RECHECK
    assert passes.warned(article.url, "internal error: RuntimeError")
    passes.run()
    assert passes.article().failures == 2 and len(site.raw.requests_to("/page.html")) == 2


def test_a_crashing_poll_is_recorded_on_the_feed_and_backs_off(
    site: Site, store: Store, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.feed()

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("parser bug")

    monkeypatch.setattr("watcher.tasks.poll.parse_feed", broken)
    passes = Passes(make_config(site.feed_url), store, caplog)
    poll = poll_of(passes.run())
    state = store.feed_state("wire")
    assert poll.status == "failed" and state.last_error == "internal error: KeyError: 'parser bug'"
    assert state.error_streak == 1 and state.next_poll_at == passes.started + INTERVAL
    assert passes.warned("feed wire", "internal error")
    passes.run()
    state = store.feed_state("wire")
    assert state.error_streak == 2 and state.next_poll_at == passes.started + 2 * INTERVAL


# --- the daemon ----------------------------------------------------------------------------


def test_the_daemon_rechecks_a_bad_etag_article_without_tracebacks(
    site: Site, tmp_path: Path
) -> None:
    site.feed(), site.page(headers=[("ETag", b'"caf\xc3\xa9"')])
    config = tmp_path / "watcher.yaml"
    database = tmp_path / "watcher.db"
    config.write_text(
        f"""
database: "sqlite:///{database}"
allow_private_networks: true
defaults: {{interval: 1s, recheck: [{{until: 1h, every: 1s}}]}}
feeds: [{{name: wire, url: "{site.feed_url}"}}]
"""
    )
    log = tmp_path / "run.log"
    with daemon(config, log) as process:
        wait_for(lambda: len(site.raw.requests_to("/page.html")) >= 4, 40, "four checks")
        assert stop(process) == 0, log.read_text()
    written = log.read_text()
    assert "Traceback" not in written and "crashed" not in written, written
    assert "ETag header" in written
    assert site.sent("/page.html")[-1] == (None, None)
    opened = Store.open(f"sqlite:///{database}")
    try:
        article = opened.find_article(site.raw.url("/page.html"))
        assert article is not None and article.checks >= 3
        assert (article.failures, article.etag) == (0, None)
    finally:
        opened.close()
