"""The one way every listing command prints: a table on a terminal, tab-separated lines on a
pipe, JSON when asked.

- ``--json``: the rows as they are (documented per command in its ``--help``), datetimes
  in ISO 8601, secrets masked.
- stdout not a terminal: a header line, then one line per row, columns separated by tabs and
  never shortened, so ``watcher alerts | grep ceasefire`` and ``cut -f`` work. A tab or a line
  break inside a value becomes a space (or ``; ``), so a row stays one line.
- a terminal: a rich table whose columns wrap (fold) rather than end in "…": a URL or a
  rule's name is always there whole, if on two lines.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click

Row = dict[str, Any]


@dataclass(frozen=True)
class Column:
    """One column: its header and how a row's value is shown (default: the key's value)."""

    header: str
    key: str
    show: Callable[[Any], str] | None = None

    def text(self, row: Row) -> str:
        value = row.get(self.key)
        if self.show is not None:
            return self.show(value)
        return "" if value is None else str(value)


def json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def to_json(payload: object, mask: Callable[[str], str] = str) -> str:
    return mask(json.dumps(payload, indent=2, ensure_ascii=False, default=json_default))


def is_terminal() -> bool:
    return sys.stdout.isatty()


def _one_line(text: str) -> str:
    return text.replace("\t", " ").replace("\r", "").replace("\n", "; ")


def emit(
    rows: Sequence[Row],
    columns: Sequence[Column],
    *,
    as_json: bool = False,
    empty: str = "nothing to show",
    mask: Callable[[str], str] = str,
    title: str | None = None,
) -> None:
    """Print ``rows`` as JSON, as tab-separated lines, or as a table (see the module doc)."""
    if as_json:
        click.echo(to_json(list(rows), mask))
        return
    if not is_terminal():
        # Piped and empty: the header alone on stdout (a script sees no row), the words on stderr.
        click.echo("\t".join(column.header for column in columns))
        if not rows:
            click.echo(empty, err=True)
        for row in rows:
            click.echo(mask("\t".join(_one_line(column.text(row)) for column in columns)))
        return
    if not rows:
        click.echo(empty)
        return
    _table(rows, columns, mask, title)


def _table(
    rows: Iterable[Row], columns: Sequence[Column], mask: Callable[[str], str], title: str | None
) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column.header, overflow="fold")
    for row in rows:
        # Text, not markup: an article's "[brackets]" must print as they are.
        table.add_row(*(Text(mask(column.text(row))) for column in columns))
    Console(highlight=False).print(table)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 notifier``, ``2 notifiers``, ``0 checks``."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count} {word}"


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None] | None]:
    """A bar on a terminal; on a pipe, nothing (the summary says it all)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update
