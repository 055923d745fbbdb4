"""How fast ``watcher migrate-to`` copies a SQLite installation into PostgreSQL: rows and
megabytes a second, for batch sizes.

A scratch SQLite database gets ARTICLES articles (in two feeds), VERSIONS versions each of
about 4 KB of text, an alert per version and a delivery per alert; then it is copied, with
the same code as the command (:func:`watcher.storage.transfer.copy_database`), into a scratch
schema of the PostgreSQL at $WATCHER_TEST_POSTGRES_URL (default: the local test server),
once per batch size, and the rows counted on both sides.

    python bench/migrate_bench.py [--articles 5000] [--versions 3] [--batches 100,1000,5000]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from watcher.storage import schema  # noqa: E402
from watcher.storage.engine import engine_url  # noqa: E402
from watcher.storage.store import Store  # noqa: E402
from watcher.storage.transfer import copy_database, count_rows, open_source  # noqa: E402

BASE = os.environ.get("WATCHER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 11, 1, tzinfo=UTC)
WORDS = ("talks", "envoy", "harbour", "convoy", "bridge", "ministry", "statement", "aid")


def insert(engine: Engine, row: type, rows: list[dict[str, object]]) -> None:
    with engine.begin() as db:
        db.execute(row.__table__.insert(), rows)  # type: ignore[attr-defined]


def versions_of(rng: random.Random, article: int, versions: int) -> list[dict[str, object]]:
    return [
        {
            "id": (article - 1) * versions + n,
            "article_id": article,
            "number": n,
            "title": f"Story {article}",
            "text": " ".join(rng.choice(WORDS) for _ in range(600)),  # about 4 KB
            "content_hash": f"{article}-{n}",
            "source": "page",
            "fetched_at": T0 + timedelta(hours=n),
            "last_seen_at": T0 + timedelta(hours=n),
        }
        for n in range(1, versions + 1)
    ]


def fill(engine: Engine, articles: int, versions: int) -> None:
    rng = random.Random(1)
    insert(
        engine, schema.FeedRow, [{"id": i, "name": f"f{i}", "url": f"http://f{i}/"} for i in (1, 2)]
    )
    for start in range(1, articles + 1, 1000):
        ids = range(start, min(start + 1000, articles + 1))
        insert(
            engine,
            schema.ArticleRow,
            [{"id": a, "url": f"http://news.example/{a}", "first_seen": T0} for a in ids],
        )
        insert(
            engine,
            schema.ArticleFeedRow,
            [{"article_id": a, "feed_id": 1 + a % 2, "first_seen": T0} for a in ids],
        )
        rows = [version for a in ids for version in versions_of(rng, a, versions)]
        insert(engine, schema.VersionRow, rows)
        alerts = [
            {
                "id": v["id"],
                "rule": "all",
                "event": "changed",
                "article_id": v["article_id"],
                "version_id": v["id"],
                "matched": "[]",
                "detail": "{}",
                "created_at": T0,
            }
            for v in rows
        ]
        insert(engine, schema.AlertRow, alerts)
        insert(
            engine,
            schema.DeliveryRow,
            [
                {
                    "id": a["id"],
                    "alert_id": a["id"],
                    "notifier": "desk",
                    "created_at": T0,
                    "done_targets": "[]",
                }
                for a in alerts
            ],
        )


def scratch_schema(admin: Engine) -> tuple[str, str]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as db:
        db.execute(text(f'CREATE SCHEMA "{name}"'))
    separator = "&" if "?" in BASE else "?"
    return name, f"{BASE}{separator}options={quote(f'-csearch_path={name}')}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=5000)
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--batches", default="100,1000,5000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'watcher.db'}"
        Store.open(url).close()
        source = open_source(url)
        fill(source, args.articles, args.versions)
        size = (Path(folder) / "watcher.db").stat().st_size / 1e6
        admin = create_engine(engine_url(BASE), isolation_level="AUTOCOMMIT")
        for batch in (int(b) for b in args.batches.split(",")):
            name, target_url = scratch_schema(admin)
            try:
                target = Store.open(target_url, writer=True)
                started = time.perf_counter()
                copy_database(source, target.engine, batch=batch)
                copied = time.perf_counter() - started
                started = time.perf_counter()
                counts = count_rows(source, target.engine)
                counted = time.perf_counter() - started
                target.close()
            finally:
                with admin.connect() as db:
                    db.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
            rows = sum(c.target for c in counts)
            assert all(c.equal for c in counts)
            print(
                f"batch {batch:>5}: {rows} rows ({size:.0f} MB of SQLite) in {copied:.1f} s: "
                f"{rows / copied:,.0f} rows/s, {size / copied:.1f} MB/s; counting {counted:.2f} s"
            )
        source.dispose()


if __name__ == "__main__":
    main()
