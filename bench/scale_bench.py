"""Checks per second with 1, 2 and 4 ``watcher worker`` processes on this machine, and the
database's share of the CPU they cost.

A loopback newsroom (the test suite's, pages with churning furniture and no validators, so
every re-check is a full fetch, extraction and comparison) serves STORIES articles re-checked
every second; the workers run against a scratch schema of the PostgreSQL at
$WATCHER_TEST_POSTGRES_URL (default: the local test server). After a warm-up, the checks
counted on the article rows over the window give the rate; CPU is read from /proc for the
workers and for every PostgreSQL server process.

    python bench/scale_bench.py [--seconds 20] [--workers 1,2,4] [--stories 60]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sqlalchemy import create_engine, text  # noqa: E402

from support.newsroom import Newsroom, make_story  # noqa: E402
from support.server import LoopbackServer  # noqa: E402
from watcher.storage.engine import engine_url  # noqa: E402

BASE = os.environ.get("WATCHER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def postgres_pids() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def config_text(room: Newsroom, url: str) -> str:
    return f"""
database: "{url}"
queue: {{kind: procrastinate, stalled_after: 10s}}
allow_private_networks: true
defaults: {{interval: 1h, recheck: [{{until: 1d, every: 1s}}]}}
fetch: {{per_host: 32, concurrency: 32}}
feeds:
  - {{name: rss, url: "{room.url("/rss.xml")}"}}
"""


def checks(engine: object) -> int:
    with engine.connect() as db:  # type: ignore[attr-defined]
        return int(db.execute(text("SELECT coalesce(sum(checks), 0) FROM article")).scalar())


def measure(workers: int, stories: int, seconds: float, scratch: Path) -> tuple[float, float]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(engine_url(BASE), isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        db.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{BASE}{'&' if '?' in BASE else '?'}options={quote(f'-csearch_path={schema}')}"
    engine = create_engine(engine_url(url))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with LoopbackServer() as server:
            room = Newsroom(server).attach()
            for i in range(stories):
                room.add(make_story(f"s{i}", f"Story {i}", seed=i))
            config = scratch / f"scale-{workers}.yaml"
            config.write_text(config_text(room, url))
            command = [sys.executable, "-m", "watcher.cli", "-q", "-c", str(config), "worker"]
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            for _ in range(workers):
                processes.append(subprocess.Popen(command, env=env))
                time.sleep(0.5)  # the first one creates the schema
            time.sleep(12)  # start-up, first poll, first versions
            pg = postgres_pids()
            before = checks(engine)
            cpu_workers = sum(cpu_seconds(p.pid) for p in processes)
            cpu_db = sum(cpu_seconds(pid) for pid in pg)
            time.sleep(seconds)
            done = checks(engine) - before
            cpu_workers = sum(cpu_seconds(p.pid) for p in processes) - cpu_workers
            cpu_db = sum(cpu_seconds(pid) for pid in postgres_pids() if pid in pg) - cpu_db
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(timeout=60)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        engine.dispose()
        with admin.connect() as db:
            db.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    share = cpu_db / (cpu_db + cpu_workers) if cpu_db + cpu_workers else 0.0
    return done / seconds, share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--stories", type=int, default=300)
    args = parser.parse_args()
    scratch = Path(os.environ.get("TMPDIR", "/tmp"))
    print(f"{os.cpu_count()} cores; {args.stories} articles re-checked every second")
    print(f"{'workers':>8} {'checks/s':>9} {'database CPU share':>19}")
    for count in (int(n) for n in args.workers.split(",")):
        rate, share = measure(count, args.stories, args.seconds, scratch)
        print(f"{count:>8} {rate:>9.1f} {share:>18.0%}")


if __name__ == "__main__":
    main()
