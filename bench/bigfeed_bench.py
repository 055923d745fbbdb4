"""A 50,000-entry RSS feed (9.5 MB, under the 10 MB fetch cap), polled the way the daemon
polls it, with /healthz probed every 100 ms from another thread the whole time.

Printed: each poll until every entry is tracked (wall, CPU, new articles; at most
MAX_NEW_ARTICLES_PER_POLL a poll), a re-poll of identical bytes, one where only the
channel's lastBuildDate changed, one with one entry edited, the peak RSS, and the slowest
/healthz answer. The feed is served from loopback in this process (its CPU counts, a
little). Before the fix: 102 s and 251 MB for the first poll,
30 s for each re-poll, /healthz unanswered for 62 s.

    python bench/bigfeed_bench.py [entries] [sqlite|postgresql://...]
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import httpx  # noqa: E402

from support.bigfeed import big_rss  # noqa: E402
from support.receivers import free_port  # noqa: E402
from support.server import LoopbackServer, Reply  # noqa: E402
from watcher.config.loading import parse_config  # noqa: E402
from watcher.config.models import Config  # noqa: E402
from watcher.service.exporter import serve_metrics  # noqa: E402
from watcher.storage.store import Store  # noqa: E402
from watcher.tasks import Context, open_context, poll_feed  # noqa: E402

RSS = {"Content-Type": "application/rss+xml"}


class HealthProbe:
    """GET /healthz every 100 ms in a thread; keeps the slowest answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.slowest = 0.0
        self.answers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(timeout=120) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                client.get(self.url)
                self.slowest = max(self.slowest, time.monotonic() - started)
                self.answers += 1
                self._stop.wait(0.1)


async def timed_poll(ctx: Context, label: str) -> int:
    wall, cpu = time.perf_counter(), time.process_time()
    outcome = await poll_feed(ctx, "big")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<34} {wall:8.3f} s wall {cpu:8.3f} s CPU  {outcome.new_articles:6d} new")
    return outcome.new_articles


async def bench(config: Config, store: Store, server: LoopbackServer, count: int) -> None:
    async with serve_metrics(config) as exporter, open_context(config, store) as ctx:
        exporter.attach(store, lambda: True, lambda: config)
        assert config.metrics.listen is not None
        with HealthProbe(f"http://{config.metrics.listen}/healthz") as probe:
            taken, polls = 0, 0
            while taken < count:
                polls += 1
                taken += await timed_poll(ctx, f"poll {polls} (taking new entries)")
            await timed_poll(ctx, "re-poll, identical bytes")
            rebuilt = big_rss(count, built="Mon, 01 Dec 2026 11:00:00 GMT")
            server.route("/big.xml", Reply(body=rebuilt, headers=RSS))
            await timed_poll(ctx, "re-poll, only lastBuildDate new")
            server.route("/big.xml", Reply(body=big_rss(count, edited=[count // 2]), headers=RSS))
            await timed_poll(ctx, "re-poll, one entry edited")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{'peak RSS of the process':<34} {peak:8.0f} MB")
        print(f"{'slowest /healthz answer':<34} {probe.slowest:8.3f} s of {probe.answers}")
        print(f"{'articles tracked':<34} {store.feed_state('big').articles:8d}")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    database = sys.argv[2] if len(sys.argv) > 2 else "sqlite"
    body = big_rss(count)
    print(f"feed: {count} entries, {len(body) / 1e6:.1f} MB")
    with tempfile.TemporaryDirectory() as folder, LoopbackServer() as server:
        server.route("/big.xml", Reply(body=body, headers=RSS))
        url = f"sqlite:///{folder}/bench.db" if database == "sqlite" else database
        config = parse_config(
            f"""
database: "{url}"
feeds: [{{name: big, url: "{server.url("/big.xml")}"}}]
metrics: {{listen: "127.0.0.1:{free_port()}"}}
"""
        )
        store = Store.open(url)
        try:
            asyncio.run(bench(config, store, server, count))
        finally:
            store.close()


if __name__ == "__main__":
    main()
