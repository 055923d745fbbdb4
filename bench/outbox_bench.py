"""How fast does the outbox empty a backlog of alerts to one json:// webhook on loopback?

1. setup (not part of any figure): a temp SQLite database (or a schema of its own in the
   PostgreSQL database ``--database`` names, dropped afterwards) gets N alerts: edited
   articles whose edit matches ``--per-article`` rules (10), all routed to the notifier
   ``desk``; one article per alert costs ~5 ms each on SQLite and ~15 ms on PostgreSQL;
2. ``Outbox.drain()`` is timed: routing, rendering, sending through apprise to a webhook
   served in this process by a ThreadingHTTPServer on 127.0.0.1, and recording every
   outcome. The webhook counts what it receives: every alert must arrive as one message;
3. memory: ru_maxrss (the process's high-water mark) before and after, and in a second run
   on N more alerts, the tracemalloc peak during the drain (tracemalloc slows Python down,
   so the rate comes from the first run only);
4. rendering one digest of 500 of the alerts (best of 5).

    python bench/outbox_bench.py [--alerts N] [--database postgresql://...] [--no-tracemalloc]
        [--per-article K] [--digest N] [--repeat N] [--every N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout without installing the package

import apprise  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from watcher.clock import utc_now  # noqa: E402
from watcher.config.loading import parse_config  # noqa: E402
from watcher.config.models import Config  # noqa: E402
from watcher.delivery.outbox import Outbox  # noqa: E402
from watcher.records import (  # noqa: E402
    CheckRecord,
    FeedEntry,
    NewAlert,
    NewVersion,
)
from watcher.storage.store import Store, engine_url  # noqa: E402

FEED = ("wire", "http://127.0.0.1:9/feed.xml")
# The detail of a typical edit (a number changed in one sentence), as the diff records it.
DETAIL = {
    "added": ["15"],
    "removed": ["12"],
    "words_added": 1,
    "words_removed": 1,
    "numbers": {"removed": ["12"], "added": ["15"]},
    "hunks": [{"before": "at least", "removed": "12", "added": "15", "after": "died"}],
    "hunks_total": 1,
}
ENTRY_BATCH = 1000  # feed entries per add_entries call


# ------------------------------------------------------------------------ receiver


class Receiver:
    """A json:// endpoint on loopback, in threads of this process: counts the POSTs to /hook
    (each one notification) and answers 200."""

    def __init__(self) -> None:
        self.count = 0
        self.bytes = 0
        self.other = 0  # requests to any other path or method: should stay 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver._received(self.path, len(body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def _received(self, path: str, size: int) -> None:
        with self._lock:
            if path == "/hook":
                self.count += 1
                self.bytes += size
            else:
                self.other += 1

    def reset(self) -> None:
        with self._lock:
            self.count = self.bytes = self.other = 0

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def progress(receiver: Receiver, total: int, every: int) -> Iterator[None]:
    """A line each time another ``every`` messages have arrived, from a polling thread."""
    done = threading.Event()
    start = time.perf_counter()

    def watch() -> None:
        shown = 0
        while not done.wait(0.2):
            count = receiver.count
            if count // every > shown // every:
                shown = count
                elapsed = time.perf_counter() - start
                print(
                    f"    {count:>7}/{total} delivered  {elapsed:7.1f} s  "
                    f"{count / elapsed:7.0f} alerts/s",
                    flush=True,
                )

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


# --------------------------------------------------------------------------- setup


@contextmanager
def database(url: str | None) -> Iterator[str]:
    """A temp SQLite file, or a fresh schema in the PostgreSQL database ``url``."""
    if url is None:
        with tempfile.TemporaryDirectory(prefix="outbox-bench-") as folder:
            yield f"sqlite:///{Path(folder) / 'watcher.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(engine_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def record_alerts(
    store: Store, first: int, count: int, per_article: int, now: datetime, every: int
) -> None:
    """``count`` alerts numbered from ``first``: new articles, each edited once, the edit
    matching ``per_article`` rules (one alert each: a rule alerts once per version) in that
    one ``record_check`` (one transaction). Entries go in ENTRY_BATCH at a time; a progress
    line every ``every`` alerts once it takes a while."""
    store.sync_feeds([FEED])
    started = time.perf_counter()
    shown = 0
    numbers = range(first, first + count)
    for start in range(0, count, ENTRY_BATCH * per_article):
        chunk = numbers[start : start + ENTRY_BATCH * per_article]
        groups = [chunk[i : i + per_article] for i in range(0, len(chunk), per_article)]
        entries = []
        for group in groups:
            url = f"https://news.example.org/2026/story-{group[0]}"
            entries.append(FeedEntry(url, None, url, url, f"Story {group[0]}", "", None))
        store.add_entries(FEED[0], entries, now)
        ids = store.due_article_ids(now)  # exactly these: recorded checks are not due
        assert len(ids) == len(groups), (len(ids), len(groups))
        for group, article_id in zip(groups, ids, strict=True):
            alerts = tuple(
                NewAlert(rule, "changed", FEED[0], (), DETAIL) for rule in rules(len(group))
            )
            version = NewVersion(
                f"Story {group[0]}: toll rises", "At least 15 died.", f"h{group[0]}", "page"
            )
            store.record_check(article_id, CheckRecord(now, None, version=version, alerts=alerts))
        done = start + len(chunk)
        elapsed = time.perf_counter() - started
        if done // every > shown // every and elapsed > 2 and done < count:
            shown = done
            print(f"    {done:>7}/{count} recorded  {elapsed:7.1f} s", flush=True)


def rules(count: int) -> list[str]:
    return [f"edits-{n}" for n in range(1, count + 1)]


def make_config(hook_url: str, per_article: int) -> Config:
    routed = "".join(
        f"\n  - {{name: {rule}, events: [changed], notify: [desk]}}" for rule in rules(per_article)
    )
    return parse_config(
        f'feeds: [{{name: {FEED[0]}, url: "{FEED[1]}"}}]\n'
        f'notifiers: {{desk: "{hook_url}"}}\n'
        f"rules:{routed}\n"
    )


# ------------------------------------------------------------------------ dispatch


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu_seconds: float  # of the whole process: the webhook's threads count too
    received: int
    sent: int
    messages: int
    rss_before_mb: float
    rss_after_mb: float
    traced_peak_mb: float | None
    backlog: dict[str, int]


def load() -> str:
    """Other work on the machine slows every figure here: say how much there was."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def drain(outbox: Outbox, receiver: Receiver, count: int, *, trace: bool, every: int) -> Run:
    receiver.reset()
    rss_before = max_rss_mb()
    peak: float | None = None
    if trace:
        tracemalloc.start()
    try:
        with progress(receiver, count, every):
            start, cpu = time.perf_counter(), time.process_time()
            summary = asyncio.run(outbox.drain())
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        if trace:
            peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        if trace:
            tracemalloc.stop()
    time.sleep(0.1)  # a handler thread may still be counting its last request
    return Run(
        seconds,
        cpu,
        receiver.count,
        summary.sent,
        summary.messages,
        rss_before,
        max_rss_mb(),
        peak,
        outbox.store.outbox_backlog(),
    )


def report(label: str, run: Run, count: int) -> bool:
    print(
        f"{label}: {count} alerts in {run.seconds:.2f} s -> {count / run.seconds:.0f} alerts/s "
        f"({run.seconds / count * 1000:.2f} ms/alert; CPU {run.cpu_seconds:.2f} s, "
        f"{run.cpu_seconds / count * 1000:.2f} ms/alert, webhook threads included)"
    )
    print(
        f"  receiver got {run.received} messages; outbox says {run.messages} messages, "
        f"{run.sent} sent; backlog after: {run.backlog}"
    )
    print(
        f"  peak RSS (ru_maxrss): {run.rss_before_mb:.1f} MB before, "
        f"{run.rss_after_mb:.1f} MB after"
    )
    if run.traced_peak_mb is not None:
        print(f"  tracemalloc peak during the drain: {run.traced_peak_mb:.1f} MB")
    ok = run.received == count and run.sent == count
    if not ok:
        print(f"  FAILED: {count} alerts recorded, {run.received} received, {run.sent} sent")
    return ok


# -------------------------------------------------------------------------- digest


def time_digest(outbox: Outbox, size: int, repeat: int) -> None:
    alerts = outbox.store.alerts(limit=size)
    best = float("inf")
    message = None
    for _ in range(repeat):
        start = time.perf_counter()
        message = outbox.renderer.digest(alerts[:size])
        best = min(best, time.perf_counter() - start)
    assert message is not None
    print(
        f"digest of {len(alerts[:size])} alerts: {best * 1000:.1f} ms (best of {repeat}); "
        f"text {len(message.text) / 1024:.0f} KiB, html {len(message.html) / 1024:.0f} KiB, "
        f"markdown {len(message.markdown) / 1024:.0f} KiB"
    )


# ---------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000, help="alerts per run (10000)")
    parser.add_argument(
        "--database", help="a PostgreSQL URL to use (a temp schema) instead of temp SQLite"
    )
    parser.add_argument(
        "--no-tracemalloc", action="store_true", help="skip the second run (memory)"
    )
    parser.add_argument(
        "--per-article",
        type=int,
        default=10,
        help="alerts per edited article, recorded in one transaction (10; 1 is slow on "
        "PostgreSQL: add_entries and record_check cost ~10 ms and ~6 ms each there)",
    )
    parser.add_argument("--digest", type=int, default=500, help="alerts in the digest (500)")
    parser.add_argument("--repeat", type=int, default=5, help="digest renderings (best of)")
    parser.add_argument("--every", type=int, default=1000, help="a progress line per N sent")
    args = parser.parse_args()
    count = args.alerts

    receiver = Receiver()
    ok = True
    try:
        with database(args.database) as url:
            store = Store.open(url)
            try:
                kind = store.engine.dialect.name
                version = store.engine.dialect.server_version_info or ()
                print(
                    f"database: {kind} {'.'.join(map(str, version))}; apprise "
                    f"{apprise.__version__}; Python {sys.version.split()[0]}; "
                    f"webhook {receiver.url}; load average {load()}"
                )
                config = make_config(receiver.url, args.per_article)
                outbox = Outbox.build(config, store, utc_now)
                runs = [("rate", False)] + ([] if args.no_tracemalloc else [("memory", True)])
                for number, (label, trace) in enumerate(runs):
                    start = time.perf_counter()
                    record_alerts(
                        store, number * count + 1, count, args.per_article, utc_now(), args.every
                    )
                    print(
                        f"setup ({label} run): {count} alerts recorded, {args.per_article} per "
                        f"article, in {time.perf_counter() - start:.1f} s (not part of the figures)"
                    )
                    waiting = store.outbox_backlog()["new"]
                    if waiting != count:
                        print(f"FAILED: setup left {waiting} new alerts instead of {count}")
                        return 1
                    title = "drain" if not trace else "drain under tracemalloc (slower)"
                    run = drain(outbox, receiver, count, trace=trace, every=args.every)
                    ok = report(title, run, count) and ok
                if receiver.other:
                    print(f"FAILED: {receiver.other} requests to another path than /hook")
                    ok = False
                time_digest(outbox, args.digest, args.repeat)
                print(f"load average at the end: {load()} ({os.cpu_count()} CPUs)")
            finally:
                store.close()
    finally:
        receiver.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
