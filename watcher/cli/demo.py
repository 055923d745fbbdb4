"""``watcher demo``: the daemon watching a simulated newsroom, alerts on the terminal."""

from __future__ import annotations

import logging
import signal
from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from watcher.cli.app import State, duration_option, main, pass_state

if TYPE_CHECKING:
    from watcher.config.models import Config


# The demo's jobs are loopback fetches: a Ctrl-C should end it in a moment, not 20 s.
DEMO_DRAIN_SECONDS = 5.0


@main.command(
    "demo",
    epilog="""\b
Examples:
  watcher demo
  watcher demo --edit-every 10s --duration 2m""",
)
@click.option(
    "--edit-every",
    default="5s",
    show_default=True,
    metavar="DURATION",
    help="How often the newsroom edits a story.",
)
@click.option("--duration", metavar="DURATION", help="Stop by itself after DURATION.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the demo's config and database here (default: a new temporary folder).",
)
@pass_state
def demo_command(
    state: State, edit_every: str, duration: str | None, state_dir: Path | None
) -> None:
    """A first run anyone can try: watcher watching a simulated newsroom.

    Starts a small news site on 127.0.0.1 whose stories are edited every few seconds, runs
    the daemon against it with alerts on the terminal, and shows versions and diffs as they
    happen. Ctrl-C stops it and prints the commands that explore what it recorded."""
    import asyncio
    import tempfile

    from watcher.config.loading import load_config
    from watcher.demo.newsroom import follow_up, introduction, running_newsroom, write_config

    every = duration_option(edit_every, "--edit-every")
    if every < timedelta(seconds=1):
        raise click.BadParameter("at least 1s", param_hint="--edit-every")
    stop_after = duration_option(duration, "--duration") if duration else None
    folder = state_dir or Path(tempfile.mkdtemp(prefix="watcher-demo-"))
    with running_newsroom(every.total_seconds()) as newsroom:
        config_file = write_config(folder, newsroom.feed_url)
        config = load_config(config_file)
        click.echo(introduction(newsroom, config_file, every.total_seconds()))
        state.setup_logging(logging.INFO)
        for handler in logging.getLogger().handlers:  # the reader follows events, not modules
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        # A Ctrl-C before the daemon took the signal over stops the demo all the same.
        with suppress(KeyboardInterrupt):
            asyncio.run(_run_demo(config, stop_after))
        urls = newsroom.story_urls()
    # After a closed terminal (SIGHUP) there is nobody to read it, and writing fails.
    with suppress(OSError):
        click.echo("\n" + follow_up(config_file, config.database_url(), urls))


async def _run_demo(config: Config, stop_after: timedelta | None) -> None:
    """The daemon as `watcher run` runs it; after ``stop_after`` it gets a Ctrl-C's SIGINT,
    so a timed demo stops exactly the way a person stops it."""
    import asyncio

    from watcher.service.daemon import RunOptions, run_daemon

    timer = None
    if stop_after is not None:
        timer = asyncio.get_running_loop().call_later(
            stop_after.total_seconds(), _times_up, stop_after
        )
    try:
        await run_daemon(config, RunOptions(drain_seconds=DEMO_DRAIN_SECONDS, hangup_stops=True))
    finally:
        if timer is not None:
            timer.cancel()


def _times_up(duration: timedelta) -> None:
    click.echo(f"\nThe demo ran for {duration.total_seconds():g} s (--duration): stopping.")
    signal.raise_signal(signal.SIGINT)
