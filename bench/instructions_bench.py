"""Issue 14's CPU ratios counted in instructions, which a shared machine's noise moves less.

On a virtual machine whose neighbours steal CPU, the same ``bench/cpu_bench.py`` run gives
1.2x one minute and 1.7x the next. Valgrind's callgrind counts the instructions a process
executes instead:
the same code on the same input gives the same count, whatever else the machine does. Each
figure is the difference between two child processes under callgrind that both do a first
round of the work (imports, lazy set-ups, a database's creation) and then one or two more,
so all that cancels out and one round remains:

* bare ``trafilatura.extract`` of each page (the yardstick);
* a new article: a feed's poll and ``check_articles`` on what it found, as the daemon's
  first wave does it (``cpu.workers: 1``, all in the process); each round's feed lists the
  same pages on a loopback address of its own, so every round's articles are new to the
  database, and of a host whose furniture is not yet learned from the rounds before;
* a re-check answered 304.

Instructions are not seconds (a cache miss costs more than an add), so this is a second
opinion beside cpu_bench's CPU times, not a replacement. Nor are the counts exact: what runs
depends on timing too (unchanged checks are written in batches flushed on a timer, the event
loop polls when nothing is ready), so a loaded machine moves them. Two 10-page runs of the
same re-check code, side by side with a test suite, gave 1.37 M and 3.77 M per 304: compare
runs on a quiet machine, one at a time, and with the default 30 pages. The pages are served
by a process of this script that callgrind does not run. About twelve minutes for 30 pages.

    python bench/instructions_bench.py [--pages N]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from spine_bench import CORPUS, load_pages, send_page  # noqa: E402

MODES = ("bare", "new", "recheck")
ROUNDS = 3  # the most any child does: a first round, then two more


def serve_rounds(pages: dict[str, bytes], port_queue: Any) -> None:
    """Runs in a process of its own: the pages and their feed once per round, each round on
    a loopback address of its own (127.0.0.1, .2, ...), with ETag and 304. So every round's
    articles are new to the database, and of a host of their own: a page's lines, learned
    as furniture once three articles of a host carry them, stay the article's text."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            base = f"http://{self.headers['Host']}"
            if self.path == "/feed.xml":
                items = "".join(
                    f"<item><title>{key}</title><link>{base}/p/{key}.html</link></item>"
                    for key in pages
                )
                body = f"<rss version='2.0'><channel><title>c</title>{items}</channel></rss>"
                self._send(body.encode(), "application/rss+xml")
            elif page := pages.get(self.path.removeprefix("/p/").removesuffix(".html")):
                self._send(page, "text/html; charset=utf-8")
            else:
                self.send_error(404)

        def _send(self, body: bytes, kind: str) -> None:
            send_page(self, body, kind, self.path)

    servers = [ThreadingHTTPServer((f"127.0.0.{r + 1}", 0), Handler) for r in range(ROUNDS)]
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    port_queue.put(",".join(f"http://{h}:{p}" for h, p in (s.server_address for s in servers)))
    servers[0].serve_forever()


def child(mode: str, times: int, base: str, count: int) -> None:
    """In a process under callgrind: the work of ``mode``, ``times`` times over (after one
    round of it, for the lazy set-ups that belong to no round)."""
    import trafilatura
    from cpu_bench import config_for

    from watcher.tasks import open_context, poll_feed
    from watcher.tasks.passes import check_articles

    pages = [page.decode("utf-8", "replace") for page in list(load_pages().values())[:count]]
    if mode == "bare":
        for _ in range(1 + times):
            for page in pages:
                trafilatura.extract(page)
        return
    rounds = 1 + times
    feeds = {f"r{r}": f"{url}/feed.xml" for r, url in enumerate(base.split(",")[:rounds])}

    async def waves(state: Path) -> None:
        async with open_context(config_for(base, state, "1", feeds)) as ctx:
            for r in range(rounds if mode == "new" else 1):
                await poll_feed(ctx, f"r{r}")
                await check_articles(ctx, ctx.store.due_article_ids(ctx.clock()))
            for _ in range(rounds if mode == "recheck" else 0):
                due = ctx.store.due_article_ids(ctx.clock(), everything=True)
                await check_articles(ctx, due)

    with tempfile.TemporaryDirectory() as state:
        asyncio.run(waves(Path(state)))


def instructions(mode: str, times: int, base: str, count: int) -> int:
    """The instructions one child process executed (callgrind's summary)."""
    with tempfile.TemporaryDirectory() as out:
        target = Path(out) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={target}",
            sys.executable,
            __file__,
            "--child",
            mode,
            str(times),
            base,
            str(count),
        ]
        subprocess.run(command, check=True, capture_output=True)
        found = re.search(r"^summary:\s+(\d+)", target.read_text(), re.M)
        if found is None:
            raise RuntimeError(f"no summary in callgrind's output for {mode} x{times}")
        return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=30, help="first N corpus pages")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, times, base, count = args.child
        child(mode, int(times), base, int(count))
        return
    if not CORPUS.is_dir():
        print(f"corpus not found at {CORPUS}; nothing to measure")
        return
    if shutil.which("valgrind") is None:
        print("valgrind not found; nothing to measure (Debian: apt-get install valgrind)")
        return
    pages = dict(list(load_pages().items())[: args.pages])
    count = len(pages)
    queue: Any = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve_rounds, args=(pages, queue), daemon=True)
    server.start()
    try:
        base = queue.get(timeout=30)
        print(f"{count} pages; 6 processes under callgrind, two at a time (minutes)", flush=True)
        runs = [(mode, times) for mode in MODES for times in (1, 2)]
        with ThreadPoolExecutor(2) as pool:
            counts = dict(
                zip(runs, pool.map(lambda r: instructions(*r, base, count), runs), strict=True)
            )
    finally:
        server.terminate()
    per_article = {mode: (counts[mode, 2] - counts[mode, 1]) / count for mode in MODES}
    print_figures(per_article)


def print_figures(per_article: dict[str, float]) -> None:
    bare, new, recheck = (per_article[mode] for mode in MODES)
    print(f"bare trafilatura.extract     {bare / 1e6:8.2f} M instructions/article")
    ratio = new / bare
    print(f"new article (workers 1)      {new / 1e6:8.2f} M  -> {ratio:.2f}x bare (target 1.3x)")
    print(f"  beyond bare extraction     {(new - bare) / 1e6:8.2f} M")
    print(
        f"re-check answered 304        {recheck / 1e6:8.2f} M  "
        f"= {recheck / bare:.1%} of a bare extraction"
    )


if __name__ == "__main__":
    main()
