"""Fast on one machine: the figures of issue 14, on the real pages of
../shared/corpora/article-extraction served from loopback by a separate process.

Each wave is the daemon's way of checking: ``check_articles`` on every due article,
``fetch.concurrency`` at once, unchanged checks written in batches. Printed:

1. a re-check answered 304: CPU ms per article (target under 1 ms);
2. a new article: CPU of this process per article against bare ``trafilatura.extract`` of
   the same pages (target at most 1.3x), with ``cpu.workers: 1`` (all work in this process);
3. the first wave of N new pages: wall time with ``cpu.workers: 1`` and ``auto``.

    python bench/cpu_bench.py [--pages N] [--rounds R]

Run on older code (no ``cpu:`` section), it measures ``workers: 1`` only.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

import trafilatura  # noqa: E402
from spine_bench import CORPUS, load_pages, serve  # noqa: E402

from watcher.config.loading import parse_config  # noqa: E402
from watcher.config.models import Config  # noqa: E402
from watcher.tasks import open_context, poll_feed  # noqa: E402
from watcher.tasks.passes import check_articles  # noqa: E402


@dataclass(frozen=True)
class Wave:
    """One fresh database: the first wave, then the 304 wave."""

    statuses: dict[str, int]
    new_wall: float
    new_cpu: float
    recheck_cpu: float
    pool_start: float  # wall seconds to start the pool's processes (not in new_wall)


def config_for(
    base: str, state: Path, workers: str | None, feeds: dict[str, str] | None = None
) -> Config:
    """The bench's config: one feed ``corpus`` at ``base``, or ``feeds`` (name -> feed URL)."""
    cpu = f"cpu: {{workers: {workers}}}" if workers is not None else ""
    listed = feeds or {"corpus": f"{base}/feed.xml"}
    feed_list = ", ".join(f'{{name: {name}, url: "{url}"}}' for name, url in listed.items())
    return parse_config(
        f"""
        database: "sqlite:///{state / "bench.db"}"
        allow_private_networks: true
        feeds: [{feed_list}]
        fetch: {{per_host: 8, concurrency: 8}}
        {cpu}
        rules:
          - {{name: words, keywords: [government, police, election], events: [new, changed]}}
        """
    )


async def wave(base: str, workers: str | None) -> Wave:
    with tempfile.TemporaryDirectory() as state:
        async with open_context(config_for(base, Path(state), workers)) as ctx:
            await poll_feed(ctx, "corpus")
            ids = ctx.store.due_article_ids(ctx.clock())
            started = time.perf_counter()
            if hasattr(ctx, "cpu"):
                await ctx.cpu.warm()  # the daemon starts its pool once, for its whole life
            start = time.perf_counter() - started
            wall, cpu = time.perf_counter(), time.process_time()
            outcomes = await check_articles(ctx, ids)
            new_wall, new_cpu = time.perf_counter() - wall, time.process_time() - cpu
            cpu = time.process_time()
            rechecks = await check_articles(
                ctx, ctx.store.due_article_ids(ctx.clock(), everything=True)
            )
            recheck_cpu = time.process_time() - cpu
    statuses = [o.status for o in outcomes] + [f"re-check {o.status}" for o in rechecks]
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    return Wave(counts, new_wall, new_cpu, recheck_cpu, start)


def bare_cpu(pages: dict[str, bytes]) -> float:
    start = time.process_time()
    for page in pages.values():
        trafilatura.extract(page.decode("utf-8", "replace"))
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=0, help="first N pages (default all)")
    parser.add_argument("--rounds", type=int, default=5, help="best of R rounds")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(f"corpus not found at {CORPUS}; nothing to measure")
        return
    pages = load_pages()
    if args.pages:
        pages = dict(list(pages.items())[: args.pages])
    count = len(pages)
    pooled = "cpu" in Config.model_fields
    print(f"{count} pages, {sum(map(len, pages.values())) / 1e6:.1f} MB; {os.cpu_count()} cores")
    bare_cpu(dict(list(pages.items())[:3]))  # warm-up: imports and caches
    queue: Any = multiprocessing.Queue()
    flag = multiprocessing.Value("i", 0)
    child = multiprocessing.Process(target=serve, args=(pages, pages, queue, flag), daemon=True)
    child.start()
    try:
        base = queue.get(timeout=30)
        bares: list[float] = []
        inline: list[Wave] = []
        auto: list[Wave] = []
        # Rounds alternate bare and watcher, so a machine whose speed drifts (a shared VM)
        # slows both sides of the ratio alike instead of one block of rounds.
        for _ in range(args.rounds):
            bares.append(bare_cpu(pages))
            inline.append(asyncio.run(wave(base, "1" if pooled else None)))
            if pooled:
                auto.append(asyncio.run(wave(base, "auto")))
        bare = min(bares)
    finally:
        child.terminate()
    print_figures(count, bare, inline, auto)
    # On a shared machine the best rounds of each side can come minutes apart: each round's
    # own pair, bare then watcher, drifts less.
    paired = sorted(w.new_cpu / b for w, b in zip(inline, bares, strict=True))
    middle = paired[len(paired) // 2]
    print(
        f"  each round's new article against its own bare run: median {middle:.2f}x"
        f" (range {paired[0]:.2f}-{paired[-1]:.2f}x over {len(paired)} rounds)"
    )


def print_figures(count: int, bare: float, inline: list[Wave], auto: list[Wave]) -> None:
    def ms(seconds: float) -> str:
        return f"{seconds / count * 1000:7.2f} ms/article"

    print(f"  outcomes (workers 1): {inline[0].statuses}")
    if auto:
        print(f"  outcomes (workers auto): {auto[0].statuses}")
    recheck = min(w.recheck_cpu for w in inline + auto)
    print(f"re-check answered 304, CPU              {ms(recheck)}  (target < 1 ms)")
    new = min(w.new_cpu for w in inline)
    print(f"bare trafilatura.extract, CPU           {ms(bare)}")
    print(f"new article, CPU (workers 1)            {ms(new)}  -> {new / bare:.2f}x bare")
    one = min(w.new_wall for w in inline)
    print(f"first wave of {count} pages, workers 1     {one:7.2f} s wall")
    if auto:
        best = min(w.new_wall for w in auto)
        print(
            f"first wave of {count} pages, workers auto  {best:7.2f} s wall  -> {one / best:.2f}x"
        )


if __name__ == "__main__":
    main()
