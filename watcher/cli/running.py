"""The commands that do the work: ``check`` (one pass, for cron) and ``run`` (the daemon)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import click

from watcher.cli.app import State, main, pass_state

if TYPE_CHECKING:
    from watcher.config.models import Config
    from watcher.tasks import PassSummary

SHOWN_FAILURES = 10


@main.command(epilog="""\b
Examples:
  watcher check                      # every feed, then the due re-checks
  watcher check --feed wt-world -v   # one feed, with log lines
  watcher check --force              # poll feeds that are backing off too

\b
Exit codes: 0 all well; 1 some feeds or checks failed (named on stderr); 2 a config or
usage error (an unknown --feed); 130 interrupted.""")
@click.option("--feed", "feeds", multiple=True, metavar="NAME", help="Only this feed (repeatable).")
@click.option("--recheck-all", is_flag=True, help="Re-check every tracked article, due or not.")
@click.option("--force", is_flag=True, help="Poll feeds that are backing off after failures.")
@pass_state
@click.pass_context
def check(
    ctx: click.Context, state: State, feeds: tuple[str, ...], recheck_all: bool, force: bool
) -> None:
    """One pass: poll feeds, fetch new articles, re-check due ones, record alerts.

    Refuses (exit 1) while a `watcher run` or another check writes to the same database."""
    import asyncio

    config = state.config()
    unknown = [name for name in feeds if name not in config.feeds_by_name]
    if unknown:
        known = ", ".join(sorted(config.feeds_by_name)) or "none configured"
        raise click.BadParameter(
            f"no feed named {unknown[0]!r} in {config.source}; known: {known}",
            param_hint="--feed",
        )
    summary = asyncio.run(_check(config, list(feeds) or None, recheck_all, force))
    _print_summary(summary, config)
    if summary.problems:
        ctx.exit(1)


async def _check(
    config: Config, feeds: list[str] | None, recheck_all: bool, force: bool
) -> PassSummary:
    from watcher.cli.output import progress_bar
    from watcher.service.lock import writer_store
    from watcher.storage.presence import require_present, take_anchor
    from watcher.tasks import open_context, run_pass

    # The writer lock: beside a daemon or another check, one page could be stored twice.
    url = config.database_url()
    with writer_store(url, "check") as store:
        anchor = take_anchor(url, store.engine)
        async with open_context(config, store) as ctx:
            with progress_bar() as progress:
                summary = await run_pass(
                    ctx, feeds=feeds, recheck_all=recheck_all, force=force, progress=progress
                )
        # A file deleted during the pass took every write with it: no summary of nothing.
        require_present(anchor, url, "this pass's results are not stored")
        return summary


def _print_summary(summary: PassSummary, config: Config) -> None:
    """What the pass did, on stdout; what went wrong, feed by feed and article by article,
    on stderr (and so the exit code)."""
    from watcher.cli.output import plural
    from watcher.tasks.outcomes import FALLBACKS

    polls, checks = summary.poll_counts(), summary.check_counts()
    polled = polls["ok"] + polls["not_modified"] + polls["failed"]
    parts = [f"{polls['not_modified']} not modified", f"{polls['failed']} failed"]
    if polls["skipped"]:
        parts.append(f"{polls['skipped']} skipped: backing off")
    if polls["disabled"]:
        parts.append(f"{polls['disabled']} disabled: 410 Gone")
    click.echo(f"feeds polled: {polled} ({', '.join(parts)})")
    click.echo(
        f"articles: {checks['new']} new, {checks['changed']} changed, "
        f"{checks['unchanged'] + checks['seen_again']} unchanged "
        f"({checks['seen_again']} back to an earlier version), {checks['failed']} failed"
    )
    events = summary.event_counts()
    if events:
        kinds = ("removed", "restored", "moved")
        click.echo("articles " + ", ".join(f"{kind}: {events[kind]}" for kind in kinds))
    for reason, count in sorted(summary.fallbacks().items()):
        click.echo(
            f"  {plural(count, 'article')} from feed text: {FALLBACKS[reason]}, see -v"
        )
    click.echo(f"alerts: {summary.alerts}")
    for change in summary.health:
        click.echo(config.mask(f"health: {change}"))
    _print_delivery(summary)
    _print_problems(summary, config)


def _print_delivery(summary: PassSummary) -> None:
    from watcher.cli.output import plural

    sent = summary.delivery
    if not (sent.messages or sent.waiting or sent.routed):
        return
    orphaned = sorted(set(sent.orphaned))
    held = f"{sent.waiting} held (digest or rate limit)"
    if orphaned:
        held += f", of them for {', '.join(orphaned)}, no longer in the config"
    click.echo(
        f"delivery: {plural(sent.messages, 'message')} sent or tried; alerts {sent.sent} "
        f"delivered, {sent.retrying} to retry, {sent.gave_up} given up, {held}"
    )
    for name in orphaned:
        click.echo(
            f"  notifier {name} is no longer in the config: add it back, or "
            f"`watcher outbox drop --notifier {name}`",
            err=True,
        )


def _print_problems(summary: PassSummary, config: Config) -> None:
    from watcher.cli.app import when

    for poll in summary.polls:
        if poll.status == "skipped":
            problem = f"backing off until {when(poll.next_poll)} UTC (--force polls it now)"
            if poll.error:
                problem += f"; last error: {poll.error}"
        elif poll.error or poll.warning:
            problem = poll.error or f"warning: {poll.warning}"
        else:
            continue
        click.echo(config.mask(f"  feed {poll.feed}: {problem}"), err=True)
    failed = [check for check in summary.checks if check.error]
    for check in failed[:SHOWN_FAILURES]:
        click.echo(config.mask(f"  article {check.url}: {check.error}"), err=True)
    if len(failed) > SHOWN_FAILURES:
        click.echo(f"  ... and {len(failed) - SHOWN_FAILURES} more failed articles", err=True)


@main.command(epilog="""\b
Example:
  watcher run -c /etc/watcher/watcher.yaml""")
@pass_state
def run(state: State) -> None:
    """Run as a service: poll each feed on its interval and re-check articles when due.

    Logs one line per event on stderr. Stops cleanly on SIGTERM or Ctrl-C. One writer per
    database: a second `run` or a `check` exits 1 naming this process."""
    import asyncio

    from watcher.service.daemon import run_daemon

    config = state.config()
    state.setup_logging(logging.INFO)
    asyncio.run(run_daemon(config))
