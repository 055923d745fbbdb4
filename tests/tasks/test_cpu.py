"""The extraction pool (watcher.tasks.cpu): real worker processes, plain values back, a
killed worker replaced and its page retried once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from multiprocessing import forkserver
from pathlib import Path

import pytest

from support.server import LoopbackServer, Reply
from watcher.config.loading import parse_config
from watcher.errors import ConfigError, ExtractError
from watcher.storage.store import Store
from watcher.tasks import check_article, open_context, poll_feed
from watcher.tasks.cpu import CpuPool, WorkerDied

PAGE = (
    b"<html><head><title>Pool</title></head><body><article><h1>Pool story</h1>"
    + b"".join(
        b"<p>Paragraph %d of the story, long enough to count as text.</p>" % i for i in range(12)
    )
    + b"</article></body></html>"
)


def die_first_time(marker: str) -> int:
    """In a worker: kill this very process the first time (a marker file says it did)."""
    if not os.path.exists(marker):
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def always_die() -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


def test_extracts_in_a_worker_like_inline() -> None:
    async def both() -> tuple[object, object]:
        pool = CpuPool(2, inline_first=0)
        try:
            pooled = await pool.extract(PAGE, "http://n.example/a", "text/html")
        finally:
            pool.close()
        return pooled, await CpuPool(1).extract(PAGE, "http://n.example/a", "text/html")

    pooled, inline = asyncio.run(both())
    assert pooled == inline and "Paragraph 3" in pooled.text  # type: ignore[attr-defined]


def test_the_first_pages_are_extracted_inline_then_the_pool_starts() -> None:
    """A `watcher check` of a few pages starts no fork server; a longer run gets its pool."""

    async def run() -> tuple[list[int], list[int]]:
        pool = CpuPool(2, inline_first=2)
        try:
            for _ in range(2):
                await pool.extract(PAGE, "http://n.example/a", "text/html")
            inline = pool.pids()
            await pool.extract(PAGE, "http://n.example/a", "text/html")
            return inline, pool.pids()
        finally:
            pool.close()

    inline, pooled = asyncio.run(run())
    assert inline == [] and pooled  # the executor starts its processes as work comes


def test_an_extraction_error_comes_back_as_itself() -> None:
    async def run() -> None:
        pool = CpuPool(2, inline_first=0)
        try:
            await pool.extract(b"", "http://n.example/empty", "text/html")
        finally:
            pool.close()

    with pytest.raises(ExtractError, match=r"n\.example/empty"):
        asyncio.run(run())


def test_a_killed_worker_is_replaced_and_its_work_retried_once(tmp_path: Path) -> None:
    async def run() -> tuple[int, int]:
        pool = CpuPool(2)
        try:
            survivor = await pool.run(die_first_time, str(tmp_path / "died"))
            again = await pool.extract(PAGE, "http://n.example/a", "text/html")  # pool works
            assert "Paragraph 3" in again.text
            return survivor, os.getpid()
        finally:
            pool.close()

    worker, parent = asyncio.run(run())
    assert (tmp_path / "died").exists() and worker != parent


def test_work_that_kills_its_worker_twice_gives_up() -> None:
    async def run() -> None:
        pool = CpuPool(2)
        try:
            await pool.run(always_die)
        finally:
            pool.close()

    with pytest.raises(WorkerDied):
        asyncio.run(run())


def test_cpu_workers_validated() -> None:
    assert parse_config("cpu: {workers: 1}").cpu.worker_count(8) == 1
    assert parse_config("{}").cpu.worker_count(2) == 2
    for bad in ("0", "many", "100"):
        with pytest.raises(ConfigError, match="workers"):
            parse_config(f"cpu: {{workers: {bad}}}")


BIG_PAGE = (
    "<html><head><title>Big</title></head><body><article><h1>A long story</h1>"
    + "".join(
        f"<p>Paragraph {i} of a very long story about the harbour council.</p>" for i in range(4000)
    )
    + "</article></body></html>"
)


def test_a_pool_process_killed_mid_page_the_check_still_stores_it(
    loopback: LoopbackServer, store: Store
) -> None:
    loopback.route("/big.html", Reply(body=BIG_PAGE, headers={"Content-Type": "text/html"}))
    item = f"<item><title>Big</title><link>{loopback.url('/big.html')}</link></item>"
    feed = f"<rss><channel><title>f</title>{item}</channel></rss>"
    loopback.route("/rss.xml", Reply(body=feed, headers={"Content-Type": "application/rss+xml"}))
    config = parse_config(
        f"""
        allow_private_networks: true
        cpu: {{workers: 2}}
        feeds: [{{name: f, url: "{loopback.url("/rss.xml")}"}}]
        """
    )

    async def check_while_killing() -> tuple[str, list[int], list[int]]:
        async with open_context(config, store) as ctx:
            await poll_feed(ctx, "f")
            (article_id,) = ctx.store.due_article_ids(ctx.clock())
            await ctx.cpu.warm()
            first = ctx.cpu.pids()
            check = asyncio.create_task(check_article(ctx, article_id))
            while not loopback.requests_to("/big.html"):
                await asyncio.sleep(0.01)
            while not ctx.cpu.busy():  # the page is in a pool process now
                await asyncio.sleep(0.005)
            for pid in first:
                os.kill(pid, signal.SIGKILL)
            outcome = await check
            return outcome.status, first, ctx.cpu.pids()

    status, before, after = asyncio.run(check_while_killing())
    assert status == "new"
    assert after and not set(after) & set(before)  # a new pool: the page was retried there
    article = store.find_article(loopback.url("/big.html"))
    assert article is not None and "Paragraph 3999" in store.versions(article.id)[-1].text


def test_the_pool_ignores_sigterm_mid_page() -> None:
    """SIGTERM reaches every process of the service (workers and their fork server); the
    daemon's drain waits for the page, which finishes where it was."""

    async def run() -> tuple[str, list[int], list[int]]:
        pool = CpuPool(2)
        try:
            await pool.warm()
            before = pool.pids()
            work = asyncio.ensure_future(
                pool.extract(BIG_PAGE.encode(), "http://n.example/b", None)
            )
            await asyncio.sleep(0.1)
            server = forkserver._forkserver._forkserver_pid
            for pid in [*before, server]:
                os.kill(pid, signal.SIGTERM)
            return (await work).text, before, pool.pids()
        finally:
            pool.close()

    text, before, after = asyncio.run(run())
    assert "Paragraph 3999" in text
    assert after == before  # the same processes: none died, nothing was retried


_HOLDER = """
import asyncio, os, sys, time
from multiprocessing import forkserver
from watcher.tasks.cpu import CpuPool

async def main():
    pool = CpuPool(2)
    await pool.warm()
    server = forkserver._forkserver._forkserver_pid
    print(" ".join(str(pid) for pid in [*pool.pids(), server]), flush=True)
    time.sleep(60)

asyncio.run(main())
"""


def test_the_pool_leaves_with_a_watcher_killed_with_9() -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    pids = [int(pid) for pid in holder.stdout.readline().split()]
    assert len(pids) == 3
    holder.kill()
    holder.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
