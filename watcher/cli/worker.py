"""``watcher worker``: one of any number of identical queue workers (``queue: procrastinate``),
and the ``workers`` part of ``watcher status``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import click

from watcher.cli.app import State, main, pass_state

if TYPE_CHECKING:
    from watcher.config.models import Config
    from watcher.storage.reads import ReadQueries


@main.command(
    epilog="""\b
Examples:
  watcher -c /etc/watcher/watcher.yaml worker                  # queue: procrastinate
  watcher worker --concurrency 16
  systemctl start watcher-worker@1 watcher-worker@2            # two on this machine"""
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1000),
    default=10,
    show_default=True,
    help="Jobs this worker runs at once.",
)
@pass_state
def worker(state: State, concurrency: int) -> None:
    """Run a queue worker: polls, article checks, the outbox, health and prune as jobs.

    Needs `queue: procrastinate` and a PostgreSQL database. Start any number, on any
    machines: every worker is the same, and periodic jobs run once however many there are.
    SIGTERM or Ctrl-C: the jobs under way get 20 s, the rest go back to the queue, exit 0."""
    import asyncio

    from watcher.errors import ConfigError

    config = state.config()
    if not config.queue.distributed:
        raise ConfigError(
            "`watcher worker` needs `queue: procrastinate` (and a PostgreSQL database); "
            "without it, `watcher run` does the work",
            file=config.source,
            key="queue",
        )
    state.setup_logging(logging.INFO)
    _quiet_queue_logs(state.verbose)
    asyncio.run(_work(config, concurrency))


async def _work(config: Config, concurrency: int) -> None:
    from watcher.distributed.worker import WorkerOptions, run_worker
    from watcher.service.exporter import serve_metrics
    from watcher.service.lock import writer_store

    # Shared: any number of workers together, never beside a `run` or a `check`.
    with writer_store(config.database_url(), "worker", shared=True) as store:
        async with serve_metrics(config) as exporter:

            def started(ctx: Any, alive: Any) -> None:
                exporter.attach(ctx.store, alive, lambda: ctx.config)

            await run_worker(config, store, WorkerOptions(concurrency, started))


def _quiet_queue_logs(verbose: int) -> None:
    """Procrastinate logs every job start and end at INFO, and a lost database several times
    over; the worker logs one line per outage itself. Its own lines show with -vv."""
    level = logging.DEBUG if verbose >= 2 else logging.CRITICAL
    for name in ("procrastinate", "psycopg"):  # psycopg: its pool, and cancels that failed
        logging.getLogger(name).setLevel(level)


def workers_section(config: Config, store: ReadQueries) -> dict[str, Any] | None:
    """`watcher status`'s workers and queue, or None in the embedded mode."""
    if not config.queue.distributed:
        return None
    from watcher.distributed.status import queue_report

    return queue_report(config, store)


def print_workers(section: dict[str, Any]) -> None:
    """The workers as every listing prints (a table, or tab-separated lines on a pipe), then
    the queue in one line."""
    from watcher.cli.app import when
    from watcher.cli.output import Column, emit

    columns = [
        Column("worker", "id"),
        Column("host", "host"),
        Column("started (UTC)", "started", when),
        Column("processed", "processed"),
        Column("failed", "failed"),
        Column("last seen", "last_seen", when),
        Column("state", "state"),
    ]
    emit(section["workers"], columns, empty="workers: none seen in the last hour")
    queue = section["queue"]
    depth = ", ".join(f"{n} {task}" for task, n in sorted(queue["todo"].items())) or "empty"
    click.echo(
        f"queue: {depth}; {queue['doing']} under way, {queue['stalled']} stalled, "
        f"{queue['failed']} failed"
    )
