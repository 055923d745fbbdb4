"""The ``watcher`` command. The only module that prints; errors become messages here.

Output is for people: tables and coloured diffs on a terminal, plain text when piped, JSON
where asked. Every value that came from a ``${VAR}`` in the config is masked before printing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from watcher import __version__
from watcher.clock import utc_now
from watcher.config import Config, RuleConfig, config_path, load_config, parse_duration
from watcher.daemon import run_daemon
from watcher.diff import compute_change
from watcher.errors import ConfigError, WatcherError
from watcher.extract import comparable_text, normalise
from watcher.feeds import canonical_url
from watcher.lock import writer_store
from watcher.records import AlertRecord, ArticleState, VersionRecord
from watcher.rules import documentation
from watcher.store import Store
from watcher.tasks import PassSummary, open_context, run_pass

log = logging.getLogger(__name__)

SHOWN_FAILURES = 10


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
            self._config = load_config(config_path(self.config_option))
        return self._config

    @contextmanager
    def store(self) -> Iterator[Store]:
        store = Store.open(self.config().database_url())
        try:
            yield store
        finally:
            store.close()


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def mask(config: Config, text: str) -> str:
    """Hide every secret that came from the environment."""
    for secret in sorted(config.secrets, key=len, reverse=True):
        if len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


class WatcherGroup(click.Group):
    """Turns watcher's own errors into one clear line and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"watcher: config error: {exc}", err=True)
            ctx.exit(2)
        except WatcherError as exc:
            state = ctx.find_object(State)
            message = str(exc)
            if state is not None and state._config is not None:
                message = mask(state._config, message)
            click.echo(f"watcher: {message}", err=True)
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


def setup_logging(level: int) -> None:
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s", force=True
    )
    # httpx logs every request at INFO: far too chatty for a monitor polling hundreds of URLs.
    noisy_loggers = ("httpx", "httpcore", "trafilatura", "htmldate", "courlan", "apscheduler")
    for noisy in noisy_loggers:
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


pass_state = click.make_pass_decorator(State)


@main.command()
@pass_state
def validate(state: State) -> None:
    """Check the config file and say what it sets up."""
    config = state.config()
    click.echo(
        f"{config.source}: OK — {len(config.feeds)} feeds, {len(config.rules)} rules, "
        f"{len(config.notifiers)} notifiers; database {mask(config, config.database_url())}"
    )


@main.command()
@click.option("--feed", "feeds", multiple=True, metavar="NAME", help="Only this feed (repeatable).")
@click.option("--recheck-all", is_flag=True, help="Re-check every tracked article, due or not.")
@pass_state
def check(state: State, feeds: tuple[str, ...], recheck_all: bool) -> None:
    """One pass: poll feeds, fetch new articles, re-check due ones, record alerts.

    Refuses (exit 1) while a `watcher run` or another check writes to the same database."""
    config = state.config()
    for name in feeds:
        config.feed(name)
    summary = asyncio.run(_check(config, list(feeds) or None, recheck_all))
    _print_summary(summary, config)


async def _check(config: Config, feeds: list[str] | None, recheck_all: bool) -> PassSummary:
    # The writer lock: beside a daemon or another check, one page could be stored twice.
    with writer_store(config.database_url(), "check") as store:
        async with open_context(config, store) as ctx:
            with _progress_bar() as progress:
                return await run_pass(ctx, feeds=feeds, recheck_all=recheck_all, progress=progress)


@contextmanager
def _progress_bar() -> Iterator[Callable[[str, int, int], None] | None]:
    """A bar on a terminal; on a pipe, nothing (the summary says it all)."""
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


def _print_summary(summary: PassSummary, config: Config) -> None:
    polls, checks = summary.poll_counts(), summary.check_counts()
    click.echo(
        f"feeds polled: {summary.feeds_polled} ({polls['not_modified']} not modified, "
        f"{polls['failed']} failed)"
    )
    click.echo(
        f"articles: {checks['new']} new, {checks['changed']} changed, "
        f"{checks['unchanged'] + checks['seen_again']} unchanged "
        f"({checks['seen_again']} back to an earlier version), {checks['failed']} failed"
    )
    click.echo(f"alerts: {summary.alerts}")
    for poll in summary.polls:
        if poll.error or poll.warning:
            problem = poll.error or f"warning: {poll.warning}"
            click.echo(mask(config, f"  feed {poll.feed}: {problem}"), err=True)
    failed = [check for check in summary.checks if check.error]
    for check in failed[:SHOWN_FAILURES]:
        click.echo(mask(config, f"  article {check.url}: {check.error}"), err=True)
    if len(failed) > SHOWN_FAILURES:
        click.echo(f"  ... and {len(failed) - SHOWN_FAILURES} more failed articles", err=True)


@main.command()
@pass_state
def run(state: State) -> None:
    """Run as a service: poll each feed on its interval and re-check articles when due.

    Logs one line per event on stderr. Stops cleanly on SIGTERM or Ctrl-C. One writer per
    database: a second `run` or a `check` exits 1 naming this process."""
    config = state.config()
    state.setup_logging(logging.INFO)
    asyncio.run(run_daemon(config))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@click.option("--since", metavar="DURATION", help="Only alerts of the last DURATION (e.g. 2h).")
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N alerts.")
@pass_state
def alerts(state: State, as_json: bool, since: str | None, limit: int | None) -> None:
    """Recorded alerts, oldest first."""
    start = _since(since)
    with state.store() as store:
        records = store.alerts(since=start, limit=limit)
    if as_json:
        click.echo(json.dumps([alert_json(a) for a in records], indent=2, ensure_ascii=False))
        return
    table = Table("id", "when (UTC)", "rule", "event", "feed", "v", "title", "matched", "sent")
    for a in records:
        table.add_row(
            str(a.id),
            _when(a.created_at),
            a.rule,
            a.event,
            a.feed,
            str(a.version),
            a.title[:60],
            ", ".join(a.matched),
            "yes" if a.delivery_state == "sent" else "no",
        )
    _out().print(table if records else "no alerts recorded")


def _since(since: str | None) -> datetime | None:
    if since is None:
        return None
    try:
        return utc_now() - parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None


def alert_json(alert: AlertRecord) -> dict[str, Any]:
    detail = alert.detail
    return {
        "id": alert.id,
        "rule": alert.rule,
        "event": alert.event,
        "feed": alert.feed,
        "url": alert.url,
        "title": alert.title,
        "version": alert.version,
        "created_at": alert.created_at.isoformat(),
        "matched": list(alert.matched),
        "added": detail.get("added", []),
        "removed": detail.get("removed", []),
        "delivered": alert.delivery_state == "sent",
        "delivery_state": alert.delivery_state,
        "detail": {k: v for k, v in detail.items() if k not in ("added", "removed")},
    }


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "—"


@main.command()
@click.argument("url")
@pass_state
def history(state: State, url: str) -> None:
    """Every stored version of the article at URL."""
    with state.store() as store:
        article = _article(store, url)
        versions = store.versions(article.id)
    _print_article_header(article)
    table = Table("v", "fetched (UTC)", "source", "words", "seen", "title")
    for v in versions:
        seen = f"{v.times_seen}x, last {_when(v.last_seen_at)}" if v.times_seen > 1 else "1x"
        marker = " ←" if v.number == article.current_version else ""
        table.add_row(
            f"{v.number}{marker}",
            _when(v.fetched_at),
            v.source,
            str(len(v.text.split())),
            seen,
            v.title,
        )
    _out().print(table)


def _article(store: Store, url: str) -> ArticleState:
    article = store.find_article(url) or store.find_article(canonical_url(url))
    if article is None:
        raise click.ClickException(f"no tracked article with URL {url}")
    return article


def _print_article_header(article: ArticleState) -> None:
    click.echo(f"{article.url}")
    click.echo(
        f"feeds: {', '.join(article.feeds) or '—'} · first seen {_when(article.first_seen)} · "
        f"{article.checks} checks · {article.status}"
        + (f" · next check {_when(article.next_check_at)}" if article.next_check_at else "")
    )
    if article.last_error:
        click.echo(f"last error: {article.last_error}")


@main.command()
@click.argument("url")
@click.option(
    "--from", "from_", type=int, metavar="N", help="Old version (default: the one before --to)."
)
@click.option("--to", type=int, metavar="M", help="New version (default: the latest).")
@pass_state
def diff(state: State, url: str, from_: int | None, to: int | None) -> None:
    """Word diff between two versions of the article at URL."""
    with state.store() as store:
        article = _article(store, url)
        versions = {v.number: v for v in store.versions(article.id)}
        furniture = store.site_furniture(article.host)
    if len(versions) < 2 and from_ is None:
        raise click.ClickException(f"only {len(versions)} version(s) stored: nothing to compare")
    new = _pick(versions, to if to is not None else max(versions), "--to")
    old = _pick(versions, from_ if from_ is not None else new.number - 1, "--from")
    change = compute_change(
        normalise(old.title),
        comparable_text(old.text, furniture),
        normalise(new.title),
        comparable_text(new.text, furniture),
    )
    click.echo(
        f"{article.url}: version {old.number} → {new.number} "
        f"(+{change.words_added} / -{change.words_removed} words)"
    )
    console = _out()
    rendered = Text()
    for op, text in change.ops:
        if not console.is_terminal:
            rendered.append(text if op == 0 else (f"[-{text}-]" if op < 0 else f"{{+{text}+}}"))
        else:
            rendered.append(text, style={0: "", -1: "red strike", 1: "green"}[op])
    console.print(rendered)


def _pick(versions: dict[int, VersionRecord], number: int, option: str) -> VersionRecord:
    if number not in versions:
        raise click.BadParameter(
            f"no version {number}; stored: {', '.join(map(str, sorted(versions)))}",
            param_hint=option,
        )
    return versions[number]


@main.command()
@pass_state
def feeds(state: State) -> None:
    """Each feed's state: last poll, errors, articles."""
    config = state.config()
    with state.store() as store:
        store.sync_feeds((feed.name, feed.url) for feed in config.feeds)
        states = store.feed_states([feed.name for feed in config.feeds])
    table = Table(
        "feed", "last poll (UTC)", "status", "next poll", "articles", "errors", "last error"
    )
    for s in states:
        table.add_row(
            s.name,
            _when(s.last_polled_at),
            str(s.last_status or "—"),
            _when(s.next_poll_at),
            str(s.articles),
            str(s.error_streak),
            mask(config, s.last_error or ""),
        )
    _out().print(table)


@main.command()
@pass_state
def rules(state: State) -> None:
    """What rules can say, and the rules this config sets."""
    console = _out()
    console.print("[bold]Rule conditions[/bold] (a rule fires when all it sets hold):")
    for kind, doc in documentation():
        console.print(f"  [bold]{kind}[/bold]: {escape(doc)}")
    console.print(
        r"  [bold]events[/bold]: `events: \[new, changed]` — which events the rule fires on."
    )
    console.print(
        r"  [bold]notify[/bold]: `notify: \[name, ...]` — the notifiers its alerts go to."
    )
    if not config_path(state.config_option).exists():
        return
    config = state.config()
    console.print(f"\n[bold]Rules in {config.source}[/bold]:")
    for rule in config.rules:
        console.print(f"  [bold]{escape(rule.name)}[/bold]: {escape(describe_rule(rule))}")


def describe_rule(rule: RuleConfig) -> str:
    parts = [f"on {' and '.join(rule.events)}"]
    if rule.keywords:
        parts.append("keywords " + ", ".join(rule.keywords))
    if rule.regex:
        parts.append(f"regex {rule.regex}")
    if rule.feeds or rule.tags:
        parts.append("only feeds " + ", ".join(rule.feeds + [f"tag:{t}" for t in rule.tags]))
    if rule.min_change:
        parts.append(f"at least {rule.min_change} words changed")
    parts.append("notify " + (", ".join(rule.notify) or "nobody yet"))
    return "; ".join(parts)


if __name__ == "__main__":  # pragma: no cover
    main()
