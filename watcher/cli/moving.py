"""``watcher migrate-to URL``: this installation's database copied into another one
(typically SQLite into PostgreSQL, before scaling out), nothing lost."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from watcher.cli.app import State, main, pass_state

if TYPE_CHECKING:
    from watcher.storage.transfer import TableCount

# Off a terminal, a table being copied says how far it is every this many rows.
PROGRESS_EVERY_ROWS = 100_000


@main.command(
    "migrate-to",
    epilog="""\b
Examples:
  watcher migrate-to postgresql://watcher@db.example.org/watcher
  watcher -c /etc/watcher/watcher.yaml migrate-to "postgresql://watcher:${PGPASSWORD}@db/watcher"
  watcher migrate-to --replace postgresql://watcher@db/watcher   # overwrite a failed try

\b
Then set `database:` to the URL in the config (and `queue: procrastinate` to scale out).
Exit codes: 0 copied and every table's rows counted equal on both sides; 1 refused or
failed (the target is left as it was); 2 a config or usage error.""",
)
@click.argument("url")
@click.option(
    "--replace",
    is_flag=True,
    help="Delete the watcher data the target already holds (else such a target is refused).",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="Rows per insert.",
)
@pass_state
def migrate_to(state: State, url: str, replace: bool, batch: int) -> None:
    """Copy this installation's database (the config's `database:`) into the one at URL.

    Every table, ids kept, in one transaction of the target, whose schema watcher's own
    migrations create first; PostgreSQL's id sequences are moved past the copied ids; each
    table's rows are counted on both sides at the end. Refused while `watcher run`, a
    `watcher check` or workers write to either database (stop the daemon first), and when
    the target already holds data, unless --replace. The source is not changed, apart
    from a schema upgrade as `watcher run` would make."""
    from watcher.cli.output import progress_bar
    from watcher.errors import StoreError
    from watcher.storage.engine import database_label

    source = state.config().database_url()
    if database_label(source) == database_label(url):
        raise click.BadParameter("the target is the config's own database", param_hint="URL")
    started = time.monotonic()
    with progress_bar() as bar:
        counts = _copy(source, url, replace, batch, _reporter(bar))
    _print_counts(counts)
    unequal = [count.table for count in counts if not count.equal]
    if unequal:
        differ = f"rows differ after the copy in {', '.join(unequal)}"
        raise StoreError(differ, database=database_label(url))
    rows = sum(count.target for count in counts)
    click.echo(
        f"copied {rows} rows in {time.monotonic() - started:.1f} s; now set "
        f"`database: {database_label(url)}` in the config (the old database is left as it was)"
    )


def _copy(
    source: str, target: str, replace: bool, batch: int, progress: Callable[[str, int, int], None]
) -> list[TableCount]:
    """Under the writer's lock of both databases (no daemon, check or worker writing to
    either meanwhile): open both, copy, count."""
    from watcher.service.lock import instance_lock
    from watcher.storage.store import Store
    from watcher.storage.transfer import copy_database, count_rows, open_source

    with instance_lock(source, "migrate-to"), instance_lock(target, "migrate-to"):
        reader = open_source(source)
        try:
            writer = Store.open(target, writer=True)  # the schema, by watcher's migrations
            try:
                copy_database(
                    reader, writer.engine, replace=replace, batch=batch, progress=progress
                )
                return count_rows(reader, writer.engine)
            finally:
                writer.close()
        finally:
            reader.dispose()


def _reporter(
    bar: Callable[[str, int, int], None] | None,
) -> Callable[[str, int, int], None]:
    """The progress of the copy: the bar on a terminal; else a line per table on stderr
    (and every PROGRESS_EVERY_ROWS rows of a big one)."""
    if bar is not None:
        return bar
    shown: dict[str, int] = {}

    def line(table: str, done: int, total: int) -> None:
        last = shown.get(table, 0)
        if done == total or done - last >= PROGRESS_EVERY_ROWS:
            shown[table] = done
            click.echo(f"copying {table}: {done} of {total} rows", err=True)

    return line


def _print_counts(counts: list[TableCount]) -> None:
    from watcher.cli.output import Column, emit

    rows = [
        {"table": c.table, "source": c.source, "target": c.target, "equal": c.equal}
        for c in counts
    ]
    columns = [
        Column("table", "table"),
        Column("source rows", "source"),
        Column("target rows", "target"),
        Column("", "equal", lambda equal: "ok" if equal else "DIFFERENT"),
    ]
    emit(rows, columns, empty="no tables")
