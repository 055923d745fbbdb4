"""The extraction pool (watcher.tasks.cpu): real worker processes, plain values back, a
killed worker replaced and its page retried once."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from watcher.config.loading import parse_config
from watcher.errors import ConfigError, ExtractError
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
        pool = CpuPool(2)
        try:
            pooled = await pool.extract(PAGE, "http://n.example/a", "text/html")
        finally:
            pool.close()
        return pooled, await CpuPool(1).extract(PAGE, "http://n.example/a", "text/html")

    pooled, inline = asyncio.run(both())
    assert pooled == inline and "Paragraph 3" in getattr(pooled, "text")


def test_an_extraction_error_comes_back_as_itself() -> None:
    async def run() -> None:
        pool = CpuPool(2)
        try:
            await pool.extract(b"", "http://n.example/empty", "text/html")
        finally:
            pool.close()

    with pytest.raises(ExtractError, match="n.example/empty"):
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
