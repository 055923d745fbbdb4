"""CPU cost of the spine on real news pages served from loopback, in one run.

The 91 real pages of ../shared/corpora/article-extraction are served by a separate process
(so its CPU is not counted) with ETags; a feed lists them all. Then, in this process:

1. bare ``trafilatura.extract`` on every page (the yardstick);
2. first pass: every page is a new article — fetch, extract, normalise, store, rules;
3. re-check of every article answered 304 Not Modified;
4. re-check after one word of every article's body was edited — fetch, extract, compare,
   diff, rules, store a version and its alerts;
5. the diff benchmark (25 KB article, 200 scattered word edits) from bench/diff_bench.py.

Targets: (2) at most 1.3x of (1); (3) under 1 ms per check; (5) under 20 ms.

    python bench/spine_bench.py
"""

from __future__ import annotations

import asyncio
import gzip
import multiprocessing
import re
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import trafilatura  # noqa: E402

from watcher.config import parse_config  # noqa: E402
from watcher.tasks import Context, check_article, open_context, poll_feed  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpora" / "article-extraction"


def load_pages() -> dict[str, bytes]:
    return {
        path.name.removesuffix(".html.gz"): gzip.decompress(path.read_bytes())
        for path in sorted((CORPUS / "html").glob("*.html.gz"))
    }


def edit_one_word(page: bytes) -> bytes:
    """Replace one word of the article body: a word that occurs exactly once in the extracted
    text and exactly once in the HTML, so the edit surely lands in the story."""
    html = page.decode("utf-8", "replace")
    text = trafilatura.extract(html) or ""
    for word in re.findall(r"\b[a-z]{7,}\b", text):
        pattern = rf"\b{word}\b"
        if len(re.findall(pattern, text)) == 1 and len(re.findall(pattern, html)) == 1:
            return re.sub(pattern, "rewritten", html).encode("utf-8")
    return page


def serve(pages: dict[str, bytes], edited: dict[str, bytes], port_queue: Any, flag: Any) -> None:
    """Runs in a child process: the feed and the pages, with ETag / 304."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real sites do

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/feed.xml":
                items = "".join(
                    f"<item><title>{key}</title><link>{base}/p/{key}.html</link></item>"
                    for key in pages
                )
                self._send(
                    f"<rss version='2.0'><channel><title>c</title>{items}</channel></rss>".encode(),
                    "application/rss+xml",
                    "feed",
                )
                return
            key = self.path.removeprefix("/p/").removesuffix(".html")
            body = (edited if flag.value else pages).get(key)
            if body is None:
                self.send_error(404)
                return
            self._send(body, "text/html; charset=utf-8", f"{key}-{flag.value}")

        def _send(self, body: bytes, kind: str, etag: str) -> None:
            tag = f'"{etag}"'
            if self.headers.get("If-None-Match") == tag:
                self.send_response(304)
                self.send_header("ETag", tag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", tag)
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    port_queue.put(base)
    server.serve_forever()


def cpu(work: Callable[[], Any]) -> tuple[float, Any]:
    start = time.process_time()
    result = work()
    return time.process_time() - start, result


async def timed_checks(ctx: Context, ids: list[int]) -> tuple[float, list[str]]:
    start = time.process_time()
    statuses = [(await check_article(ctx, i)).status for i in ids]
    return time.process_time() - start, statuses


def report(label: str, seconds: float, count: int, extra: str = "") -> None:
    per = seconds / max(count, 1) * 1000
    print(f"{label:<44} {per:8.2f} ms/article  ({count} articles){extra}")


async def spine(base: str, flag: Any, state: Path, count: int) -> tuple[float, float, float]:
    config = parse_config(
        f"""
        database: "sqlite:///{state / "bench.db"}"
        feeds: [{{name: corpus, url: "{base}/feed.xml"}}]
        fetch: {{per_host: 4, concurrency: 4}}
        rules:
          - {{name: words, keywords: [government, police, election], events: [new, changed]}}
          - {{name: edits, events: [changed]}}
        """
    )
    async with open_context(config) as ctx:
        await poll_feed(ctx, "corpus")
        ids = ctx.store.due_article_ids(ctx.clock())
        new_cpu, statuses = await timed_checks(ctx, ids)
        print(f"  first pass outcomes: {count_of(statuses)}")
        same_cpu, statuses = await timed_checks(ctx, ids)
        print(f"  304 pass outcomes:   {count_of(statuses)}")
        flag.value = 1
        edit_cpu, statuses = await timed_checks(ctx, ids)
        print(f"  edited pass outcomes: {count_of(statuses)}")
    return new_cpu, same_cpu, edit_cpu


def count_of(statuses: list[str]) -> dict[str, int]:
    return {s: statuses.count(s) for s in sorted(set(statuses))}


def main() -> None:
    if not CORPUS.is_dir():
        print(f"corpus not found at {CORPUS}; nothing to measure")
        return
    pages = load_pages()
    edited = {key: edit_one_word(page) for key, page in pages.items()}
    print(
        f"{len(pages)} real pages, {sum(map(len, pages.values())) / 1e6:.1f} MB of HTML; "
        f"{sum(edited[k] != pages[k] for k in pages)} with a one-word body edit"
    )

    texts = {k: v.decode("utf-8", "replace") for k, v in pages.items()}
    for text in list(texts.values())[:3]:
        trafilatura.extract(text)  # warm-up: imports and caches
    bare, _ = cpu(lambda: [trafilatura.extract(t) for t in texts.values()])

    flag = multiprocessing.Value("i", 0)
    queue: Any = multiprocessing.Queue()
    child = multiprocessing.Process(target=serve, args=(pages, edited, queue, flag), daemon=True)
    child.start()
    try:
        base = queue.get(timeout=30)
        with tempfile.TemporaryDirectory() as state:
            run: Awaitable[tuple[float, float, float]] = spine(base, flag, Path(state), len(pages))
            new_cpu, same_cpu, edit_cpu = asyncio.run(run)
    finally:
        child.terminate()

    print()
    report("bare trafilatura.extract", bare, len(pages))
    report(
        "new article end to end",
        new_cpu,
        len(pages),
        f"  -> {new_cpu / bare:.2f}x bare (target <= 1.3x)",
    )
    report("re-check answered 304", same_cpu, len(pages), "  (target < 1 ms)")
    report(
        "re-check with a one-word edit (diff+store)",
        edit_cpu,
        len(pages),
        f"  -> {edit_cpu / bare:.2f}x bare",
    )
    print()
    import diff_bench  # the 25 KB / 200 edits diff benchmark, same run

    sys.argv = [sys.argv[0]]
    diff_bench.main()


if __name__ == "__main__":
    main()
