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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from watcher import __version__
from watcher.cli import INTERRUPTED, interrupted
from watcher.errors import ConfigError, WatcherError

if TYPE_CHECKING:
    from rich.console import Console

    from watcher.config.models import Config
    from watcher.storage.reader import Reader
    from watcher.storage.store import Store

log = logging.getLogger(__name__)

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
# On a terminal each line carries its time; under systemd journald adds its own.
TERMINAL_LOG_FORMAT = "%(asctime)s " + LOG_FORMAT
USAGE_ERROR = 2  # click's code for a usage error; a config error is one too

EXIT_CODES = """\b
Exit codes:
  0    all well
  1    some feeds or checks failed (the summary names them), or another failure
  2    a config or usage error
  130  interrupted (Ctrl-C)

\b
Example:
  watcher check -c /etc/watcher/watcher.yaml -v"""


def log_format() -> str:
    """Log lines with a timestamp when stderr is a terminal (journald stamps its own)."""
    return TERMINAL_LOG_FORMAT if sys.stderr.isatty() else LOG_FORMAT


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
        if self._config is not None:  # a new handler: mask it again
            mask_logs(self._config.mask)

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

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        """The database of a quick read (``alerts``, ``feeds``, ``status``): the store's reads
        without loading SQLModel (see :mod:`watcher.storage.reader`). Never creates or writes."""
        from watcher.storage.reader import Reader

        reader = Reader.open(self.config().database_url())
        try:
            yield reader
        finally:
            reader.close()


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


def error(message: str) -> None:
    """One error line, the same prefix for every command."""
    click.echo(f"watcher: error: {message}", err=True)


class WatcherGroup(click.Group):
    """Turns watcher's own errors into one clear line and an exit code, never a traceback;
    gives every command the global options (``watcher check -c FILE -v`` works)."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        cmd.params.extend(_global_options())
        super().add_command(cmd, name)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's usage errors in the same one-line form as watcher's own."""
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "watcher"
            error(f"{exc.format_message()} (see `{where} --help`)")
            code = USAGE_ERROR
        except click.ClickException as exc:
            error(_masked_current(exc.format_message()))
            code = exc.exit_code
        except click.Abort:
            click.echo("\nwatcher: interrupted", err=True)
            code = INTERRUPTED
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            error(str(exc))
            ctx.exit(USAGE_ERROR)
        except WatcherError as exc:
            error(_masked(ctx, str(exc)))
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("\nwatcher: interrupted", err=True)
            ctx.exit(INTERRUPTED)
        except BrokenPipeError:  # `watcher alerts | head`: the reader has all it wanted
            _silence_stdout()
            ctx.exit(0)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: one masked line, the traceback only with -vv
            if interrupted(exc):  # Ctrl-C inside an import machinery wraps it (__set_name__)
                click.echo("\nwatcher: interrupted", err=True)
                ctx.exit(INTERRUPTED)
            log.debug("internal error", exc_info=True)
            what = _masked(ctx, f"{type(exc).__name__}: {exc}")
            error(f"internal error: {what} (run with -vv for details)")
            ctx.exit(1)


def _masked_current(text: str) -> str:
    ctx = click.get_current_context(silent=True)
    return _masked(ctx, text) if ctx is not None else text


def _silence_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _set_global(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """A global option given after the command: it updates the group's State."""
    state = ctx.find_object(State)
    if state is None or value in (None, 0, False):
        return
    if param.name == "config_option":
        state.config_option = value
    elif param.name == "verbose":
        state.verbose += value
    elif param.name == "quiet":
        state.quiet = True
    state.setup_logging(logging.ERROR)


def _global_options() -> list[click.Parameter]:
    return [
        click.Option(
            ["-c", "--config", "config_option"],
            metavar="FILE",
            expose_value=False,
            callback=_set_global,
            help="Config file (also accepted before the command).",
        ),
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            callback=_set_global,
            help="More log lines on stderr (-vv for debug).",
        ),
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            expose_value=False,
            callback=_set_global,
            help="Only errors on stderr.",
        ),
    ]


@click.group(
    cls=WatcherGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES,
)
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

    def __init__(self, mask: Callable[[str], str], fmt: str | None = None) -> None:
        super().__init__(fmt or log_format(), datefmt="%Y-%m-%d %H:%M:%S")
        self.mask = mask

    def format(self, record: logging.LogRecord) -> str:
        return self.mask(super().format(record))


def mask_logs(mask: Callable[[str], str]) -> None:
    """From now on every log line is masked (called once the config, and so its secrets, are
    known)."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(MaskingFormatter(mask))


def setup_logging(level: int) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format=log_format(),
        datefmt="%Y-%m-%d %H:%M:%S",
        force=True,
    )
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
