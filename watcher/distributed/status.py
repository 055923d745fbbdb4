"""What ``watcher status`` shows of the queue mode: the workers, and the queue's depth by
job, with the stalled and failed jobs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from watcher.clock import utc_now
from watcher.config.models import Config
from watcher.errors import StoreError
from watcher.storage.reads import ReadQueries

# Workers seen within this long are listed (stopped ones too: a crash shows as "silent").
SHOWN_FOR = timedelta(hours=1)

_BY_STATUS = (
    "SELECT task_name, status, count(*) AS n FROM procrastinate_jobs "
    "WHERE status IN ('todo', 'doing', 'failed') GROUP BY task_name, status"
)
# Under way on a worker whose Procrastinate heartbeat is older than `stalled_after` (or
# which is gone): what the next `recover` job hands back.
_STALLED = (
    "SELECT count(*) AS n FROM procrastinate_jobs j "
    "LEFT JOIN procrastinate_workers w ON w.id = j.worker_id "
    "WHERE j.status = 'doing' AND (w.id IS NULL "
    "OR w.last_heartbeat < now() - make_interval(secs => :silent))"
)


def queue_report(config: Config, store: ReadQueries) -> dict[str, Any]:
    now = utc_now()
    silent = config.queue.stalled_after
    workers = []
    for w in store.workers(seen_since=now - SHOWN_FOR):
        if w.stopped_at is not None:
            state = "stopped"
        elif now - w.last_seen > silent:
            state = "silent"  # killed, or cut off from the database
        else:
            state = "running"
        workers.append(
            {
                "id": w.id,
                "host": w.host,
                "pid": w.pid,
                "concurrency": w.concurrency,
                "started": w.started_at,
                "last_seen": w.last_seen,
                "processed": w.processed,
                "failed": w.failed,
                "state": state,
            }
        )
    return {"workers": workers, "queue": _queue(store, silent.total_seconds())}


def _queue(store: ReadQueries, silent: float) -> dict[str, Any]:
    todo: dict[str, int] = {}
    doing = failed = 0
    try:
        with store.sql() as sql:
            for row in sql.rows(_BY_STATUS):
                task, status, count = row["task_name"], row["status"], int(row["n"])
                if status == "todo":
                    todo[task] = count
                elif status == "doing":
                    doing += count
                else:
                    failed += count
            stalled = int(sql.rows(_STALLED, {"silent": silent})[0]["n"] or 0)
    except StoreError as exc:  # no queue schema yet: no worker has run
        reason = f"cannot read the job queue: {exc.reason}"
        raise StoreError(reason, database=store.label) from None
    return {"todo": todo, "doing": doing, "stalled": stalled, "failed": failed}
