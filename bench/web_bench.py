"""How fast does the web view answer with 100,000 versions stored?

1. setup (not timed): a temp SQLite database (or a schema of its own in the PostgreSQL
   database ``--database`` names, dropped afterwards) is filled through the Store's writing
   methods: ``--feeds`` feeds × ``--articles`` articles × ``--versions`` versions each
   (default 10 × 1,000 × 10 = 100,000 versions of ~300 words), one alert per edit;
2. each page is requested ``--repeat`` times through an in-process ASGI client on a
   read-only store; the figure is the server time (the handler, rendering included), the
   median and the worst, in ms. Targets: article and diff pages under 50 ms, the overview
   under 100 ms.

    python bench/web_bench.py [--database postgresql://...] [--feeds N] [--articles N]
        [--versions N] [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sqlalchemy import create_engine, text  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from support.archive import fill  # noqa: E402
from watcher.storage.engine import engine_url  # noqa: E402
from watcher.storage.store import Store  # noqa: E402
from watcher.web.app import create_app  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", help="a PostgreSQL URL (default: a temp SQLite file)")
    parser.add_argument("--feeds", type=int, default=10)
    parser.add_argument("--articles", type=int, default=1000, help="per feed")
    parser.add_argument("--versions", type=int, default=10, help="per article")
    parser.add_argument("--repeat", type=int, default=20)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url, cleanup = _database(options.database, Path(folder))
        try:
            _run(url, options)
        finally:
            cleanup()


def _database(base: str | None, folder: Path) -> tuple[str, object]:
    if base is None:
        return f"sqlite:///{folder / 'web.db'}", lambda: None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(engine_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}", drop


def _run(url: str, options: argparse.Namespace) -> None:
    started = time.perf_counter()
    writer = Store.open(url)
    filled = fill(
        writer,
        feeds=options.feeds,
        articles=options.articles,
        versions=options.versions,
        words=300,
    )
    counts = writer.counts()
    writer.close()
    print(f"filled {counts} in {time.perf_counter() - started:.0f} s")
    store = Store.open(url, create=False, read_only=True)
    middle = filled.article_ids[len(filled.article_ids) // 2]
    last = options.versions
    pages = {
        "overview /": "/",
        "feed page": f"/feeds/{filled.feeds[0]}",
        "article page": f"/articles/{middle}",
        "diff page": f"/articles/{middle}/diff/{last - 1}/{last}",
        "diff, side by side": f"/articles/{middle}/diff/1/{last}?view=split",
        "version page": f"/articles/{middle}/versions/{last}",
        "alerts": "/alerts",
        "alerts, gave up": "/alerts?state=gave_up",
        "search": "/search?q=city 500",
        "changes.atom": "/changes.atom",
        "API alerts": "/api/v1/alerts",
    }
    with TestClient(create_app(store)) as client:
        for name, path in pages.items():
            _measure(client, name, path, options.repeat)
        tag = client.get("/changes.atom").headers["etag"]
        _measure(
            client, "changes.atom, 304", "/changes.atom", options.repeat, {"if-none-match": tag}
        )
    store.close()


def _measure(
    client: TestClient, name: str, path: str, repeat: int, headers: dict[str, str] | None = None
) -> None:
    client.get(path, headers=headers)  # warm: templates compiled, furniture cached
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        reply = client.get(path, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
        assert reply.status_code in (200, 304), (path, reply.status_code)
    print(f"{name:22} median {statistics.median(times):6.1f} ms   worst {max(times):6.1f} ms")


if __name__ == "__main__":
    main()
