"""The ``watcher`` group: options every command shares, logging, and errors as messages.

Output is for people: tables and coloured diffs on a terminal, plain text when piped, JSON
where asked. Every value that came from a ``${VAR}`` in the config is masked before printing.

Starting fast is part of the interface (``watcher alerts --json`` in a shell prompt or a
script): this module and the command modules import only click and the standard library at
the top; everything heavier (pydantic, SQLAlchemy, apprise, trafilatura, rich, the daemon)
is imported inside the command that needs it. ``bench/startup_bench.py`` measures it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from watcher import __version__
from watcher.cli import INTERRUPTED
from watcher.errors import ConfigError, WatcherError

if TYPE_CHECKING:
    from rich.console import Console

    from watcher.config.models import Config
    from watcher.storage.store import Store

log = logging.getLogger(__name__)

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


@dataclass
class State:
    config_option: str | None
    verbose: int = 0
    quiet: bool = False
    _config: Config | None = None

    def setup_logging(self, default: int) -> None:
        """``default``, or silence with -q, or more detail with -v / -vv."""
        levels = [default, logging.INFO, logging.DEBUG]
        level = logging.CRITICAL if self.quiet else min(levels[min(self.verbose, 2)], default)
        setup_logging(level)

    def config(self) -> Config:
        if self._config is None:
            from watcher.config.loading import config_path, load_config

            self._config = load_config(config_path(self.config_option))
            mask_logs(self._config.mask)
        return self._config

    @contextmanager
    def store(self) -> Iterator[Store]:
        """The store of a read-only command: never creates, migrates or writes a database."""
        from watcher.storage.store import Store

        store = Store.open(self.config().database_url(), create=False)
        try:
            yield store
        finally:
            store.close()


def _masked(ctx: click.Context, text: str) -> str:
    state = ctx.find_object(State)
    return state._config.mask(text) if state is not None and state._config is not None else text


def out() -> Console:
    """Standard output for people: tables and colours on a terminal, plain text on a pipe."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def when(moment: datetime | None) -> str:
    """A time as the tables show it (UTC, to the minute)."""
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "—"


def duration_option(value: str, option: str) -> timedelta:
    """A duration given on the command line (``2h``), or a usage error naming ``option``."""
    from watcher.config.values import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


class WatcherGroup(click.Group):
    """Turns watcher's own errors into one clear line and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"watcher: config error: {exc}", err=True)
            ctx.exit(2)
        except WatcherError as exc:
            click.echo(f"watcher: {_masked(ctx, str(exc))}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("\nwatcher: interrupted", err=True)
            ctx.exit(INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: one masked line, the traceback only with -vv
            log.debug("internal error", exc_info=True)
            what = _masked(ctx, f"{type(exc).__name__}: {exc}")
            click.echo(f"watcher: internal error: {what} (run with -vv for details)", err=True)
            ctx.exit(1)


@click.group(cls=WatcherGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config_option",
    metavar="FILE",
    help="Config file (default: $WATCHER_CONFIG, else ./watcher.yaml).",
)
@click.option("-v", "--verbose", count=True, help="More log lines on stderr (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.version_option(__version__, prog_name="watcher")
@click.pass_context
def main(ctx: click.Context, config_option: str | None, verbose: int, quiet: bool) -> None:
    """Watch news feeds, keep every version of every article, alert on edits."""
    ctx.obj = State(config_option, verbose, quiet)
    # One-shot commands report problems in their own output; the log adds detail on -v.
    ctx.obj.setup_logging(logging.ERROR)


class MaskingFormatter(logging.Formatter):
    """Formats a record, traceback included, then hides the config's secrets in the text:
    an exception's message may carry a URL with a password in it."""

    def __init__(self, mask: Callable[[str], str], fmt: str = LOG_FORMAT) -> None:
        super().__init__(fmt)
        self.mask = mask

    def format(self, record: logging.LogRecord) -> str:
        return self.mask(super().format(record))


def mask_logs(mask: Callable[[str], str]) -> None:
    """From now on every log line is masked (called once the config, and so its secrets, are
    known)."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(MaskingFormatter(mask))


def setup_logging(level: int) -> None:
    logging.basicConfig(level=level, stream=sys.stderr, format=LOG_FORMAT, force=True)
    # httpx logs every request at INFO: far too chatty for a monitor polling hundreds of URLs.
    noisy_loggers = ("httpx", "httpcore", "trafilatura", "htmldate", "courlan", "apscheduler")
    for noisy in noisy_loggers:
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # APScheduler warns each time a job is still running at its next tick ("skipped: maximum
    # number of running instances"): by design here (no job overlaps itself), and under load
    # that is one line a second. The soak benchmark saw 4,650 of them in 50 minutes.
    if level > logging.DEBUG:
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    # apprise logs each failed send itself; the outbox logs it once, masked, with the alert.
    # Its lines still reach the per-send results (those handlers sit on its own logger).
    apprise_log = logging.getLogger("apprise")
    apprise_log.propagate = level <= logging.DEBUG
    if not apprise_log.handlers:
        apprise_log.addHandler(logging.NullHandler())  # else Python's last-resort handler prints


pass_state = click.make_pass_decorator(State)
