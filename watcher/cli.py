"""The ``watcher`` command. The only module that prints; errors become messages here.

Output is for people: tables and coloured diffs on a terminal, plain text when piped, JSON
where asked. Every value that came from a ``${VAR}`` in the config is masked before printing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from watcher import __version__
from watcher.clock import utc_now
from watcher.config import Config, RuleConfig, config_path, load_config
from watcher.config_values import parse_duration
from watcher.daemon import RunOptions, run_daemon
from watcher.demo import follow_up, introduction, running_newsroom, write_config
from watcher.diff import compute_change
from watcher.errors import ConfigError, WatcherError
from watcher.extract import comparable_text, normalise
from watcher.feeds import canonical_url
from watcher.lock import writer_store
from watcher.outbox import delivery_setup, send_test
from watcher.presence import require_present, take_anchor
from watcher.records import AlertRecord, ArticleState, FeedState, VersionRecord
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
            mask_logs(self._config.mask)
        return self._config

    @contextmanager
    def store(self) -> Iterator[Store]:
        """The store of a read-only command: never creates, migrates or writes a database."""
        store = Store.open(self.config().database_url(), create=False)
        try:
            yield store
        finally:
            store.close()


def _masked(ctx: click.Context, text: str) -> str:
    state = ctx.find_object(State)
    return state._config.mask(text) if state is not None and state._config is not None else text


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


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


LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


class MaskingFormatter(logging.Formatter):
    """Formats a record, traceback included, then hides the config's secrets in the text:
    an exception's message may carry a URL with a password in it."""

    def __init__(self, mask: Callable[[str], str]) -> None:
        super().__init__(LOG_FORMAT)
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


@main.command()
@pass_state
def validate(state: State) -> None:
    """Check the config file (notifiers and templates too) and say what it sets up."""
    config = state.config()
    delivery_setup(config, utc_now())
    click.echo(
        f"{config.source}: OK — {len(config.feeds)} feeds, {len(config.rules)} rules, "
        f"{len(config.notifiers)} notifiers; database {config.mask(config.database_url())}"
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
    url = config.database_url()
    with writer_store(url, "check") as store:
        anchor = take_anchor(url, store.engine)
        async with open_context(config, store) as ctx:
            with _progress_bar() as progress:
                summary = await run_pass(
                    ctx, feeds=feeds, recheck_all=recheck_all, progress=progress
                )
        # A file deleted during the pass took every write with it: no summary of nothing.
        require_present(anchor, url, "this pass's results are not stored")
        return summary


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
    for change in summary.health:
        click.echo(config.mask(f"health: {change}"))
    sent = summary.delivery
    if sent.messages or sent.waiting or sent.routed:
        click.echo(
            f"delivery: {sent.messages} messages sent or tried; alerts {sent.sent} delivered, "
            f"{sent.retrying} to retry, {sent.gave_up} given up, {sent.waiting} held "
            "(digest or rate limit)"
        )
    for poll in summary.polls:
        if poll.error or poll.warning:
            problem = poll.error or f"warning: {poll.warning}"
            click.echo(config.mask(f"  feed {poll.feed}: {problem}"), err=True)
    failed = [check for check in summary.checks if check.error]
    for check in failed[:SHOWN_FAILURES]:
        click.echo(config.mask(f"  article {check.url}: {check.error}"), err=True)
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
        payload = json.dumps([alert_json(a) for a in records], indent=2, ensure_ascii=False)
        click.echo(state.config().mask(payload))
        return
    table = Table("id", "when (UTC)", "rule", "event", "feed", "v", "title", "matched", "delivery")
    config = state.config()
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
            config.mask(delivery_summary(a)),
        )
    _out().print(table if records else "no alerts recorded")


def delivery_summary(alert: AlertRecord) -> str:
    """Per notifier: sent, waiting, retrying (tries, next, why) or gave up (why)."""
    if alert.delivery_state == "new":
        return "not routed yet"
    if not alert.deliveries:
        return "no notifier"
    parts = []
    for d in alert.deliveries:
        if d.state == "sent":
            parts.append(f"{d.notifier}: sent {_when(d.sent_at)}")
        elif d.state == "pending":
            parts.append(f"{d.notifier}: waiting")
        elif d.state == "retrying":
            parts.append(
                f"{d.notifier}: retrying ({d.attempts} tries, next {_when(d.next_try_at)}; "
                f"{d.last_error})"
            )
        else:
            parts.append(f"{d.notifier}: GAVE UP after {d.attempts} tries ({d.last_error})")
    return "\n".join(parts)


def _since(since: str | None) -> datetime | None:
    if since is None:
        return None
    return utc_now() - _duration(since, "--since")


def _duration(value: str, option: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


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
        "delivered": alert.delivered,
        "deliveries": [
            {
                "notifier": d.notifier,
                "state": d.state,
                "attempts": d.attempts,
                "next_try_at": d.next_try_at.isoformat() if d.next_try_at else None,
                "sent_at": d.sent_at.isoformat() if d.sent_at else None,
                "last_error": d.last_error,
            }
            for d in alert.deliveries
        ],
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
        states = {s.name: s for s in store.feed_states([feed.name for feed in config.feeds])}
    table = Table(
        "feed", "last poll (UTC)", "status", "next poll", "articles", "errors", "last error"
    )
    for feed in sorted(config.feeds, key=lambda feed: feed.name):
        s = states.get(feed.name)
        if s is None:  # configured since the last check or run: no row yet (reading adds none)
            table.add_row(feed.name, "never", "—", "—", "0", "0", "")
            continue
        table.add_row(
            s.name,
            _when(s.last_polled_at),
            str(s.last_status or "—") + (" gone: disabled" if s.disabled_at else ""),
            _when(s.next_poll_at),
            str(s.articles),
            str(s.error_streak),
            config.mask(s.last_error or ""),
        )
    _out().print(table)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON object instead of a table.")
@pass_state
def status(state: State, as_json: bool) -> None:
    """Each configured feed's polls, errors, articles, versions and alerts; the outbox.

    Only reads (no lock), so it runs beside `watcher run`. Articles are counted per feed:
    one in two feeds counts in both."""
    config = state.config()
    with state.store() as store:
        states = {s.name: s for s in store.feed_states()}
        totals = store.feed_totals()
        backlog = store.outbox_backlog()
    feeds = [
        feed_status(feed.name, states.get(feed.name), totals.get(feed.name, {}))
        for feed in config.feeds
    ]
    if as_json:
        payload = json.dumps(
            {"feeds": feeds, "outbox": backlog}, indent=2, ensure_ascii=False, default=_iso
        )
        click.echo(config.mask(payload))
        return
    _print_status(feeds, backlog, config)


STATUS_COUNTS = ("tracking", "retired", "versions", "alerts")


def feed_status(name: str, feed: FeedState | None, totals: dict[str, int]) -> dict[str, Any]:
    """One feed's entry in `watcher status` (a feed never polled has no row yet)."""
    return {
        "feed": name,
        "last_poll": feed.last_polled_at if feed else None,
        "next_poll": feed.next_poll_at if feed else None,
        "last_status": feed.last_status if feed else None,
        "error_streak": feed.error_streak if feed else 0,
        "last_error": feed.last_error if feed else None,
        **{key: totals.get(key, 0) for key in STATUS_COUNTS},
    }


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _print_status(feeds: list[dict[str, Any]], backlog: dict[str, int], config: Config) -> None:
    table = Table("feed", "last poll (UTC)", "next poll", "status", "errors", *STATUS_COUNTS)
    table.add_column("last error")
    for f in feeds:
        table.add_row(
            f["feed"],
            _when(f["last_poll"]),
            _when(f["next_poll"]),
            str(f["last_status"] or "—"),
            str(f["error_streak"]),
            *(str(f[key]) for key in STATUS_COUNTS),
            config.mask(f["last_error"] or ""),
        )
    console = _out()
    console.print(table if feeds else "no feeds configured")
    held = ", ".join(f"{count} {state}" for state, count in sorted(backlog.items()) if count)
    console.print(f"outbox: {held or 'empty'}")


@main.command("notify-test")
@click.argument("name")
@pass_state
def notify_test(state: State, name: str) -> None:
    """Send a test message through notifier NAME and print each service's result.

    Exits 1 when any service failed."""
    config = state.config()
    if name not in config.notifiers:
        known = ", ".join(sorted(config.notifiers)) or "none defined"
        raise click.BadParameter(f"no notifier {name!r}; known: {known}", param_hint="NAME")
    results = asyncio.run(send_test(config, name, utc_now()))
    for result in results:
        verdict = "ok" if result.ok else f"FAILED: {result.error}"
        click.echo(config.mask(f"{result.target.label} ({result.target.body_format}): {verdict}"))
    if not all(result.ok for result in results):
        raise SystemExit(1)


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
        r"  [bold]notify[/bold]: `notify: \[name, ...]` — the notifiers its alerts go to "
        "(without it, those of `delivery.default`)."
    )
    if not config_path(state.config_option).exists():
        return
    config = state.config()
    console.print(f"\n[bold]Rules in {config.source}[/bold]:")
    for rule in config.rules:
        described = describe_rule(rule, config.notifiers_for(rule.name))
        console.print(f"  [bold]{escape(rule.name)}[/bold]: {escape(described)}")


def describe_rule(rule: RuleConfig, notifiers: tuple[str, ...]) -> str:
    parts = [f"on {' and '.join(rule.events)}"]
    if rule.keywords:
        parts.append("keywords " + ", ".join(rule.keywords))
    if rule.regex:
        parts.append(f"regex {rule.regex}")
    if rule.feeds or rule.tags:
        parts.append("only feeds " + ", ".join(rule.feeds + [f"tag:{t}" for t in rule.tags]))
    if rule.min_change:
        parts.append(f"at least {rule.min_change} words changed")
    route = ", ".join(notifiers) or "nobody (recorded only)"
    parts.append(f"notify {route}" + ("" if rule.notify else " (delivery.default)"))
    return "; ".join(parts)


# The demo's jobs are loopback fetches: a Ctrl-C should end it in a moment, not 20 s.
DEMO_DRAIN_SECONDS = 5.0


@main.command("demo")
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
    every = _duration(edit_every, "--edit-every")
    if every < timedelta(seconds=1):
        raise click.BadParameter("at least 1s", param_hint="--edit-every")
    stop_after = _duration(duration, "--duration") if duration else None
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
    click.echo("\n" + follow_up(config_file, config.database_url(), urls))


async def _run_demo(config: Config, stop_after: timedelta | None) -> None:
    """The daemon as `watcher run` runs it; after ``stop_after`` it gets a Ctrl-C's SIGINT,
    so a timed demo stops exactly the way a person stops it."""
    timer = None
    if stop_after is not None:
        timer = asyncio.get_running_loop().call_later(
            stop_after.total_seconds(), _times_up, stop_after
        )
    try:
        await run_daemon(config, RunOptions(drain_seconds=DEMO_DRAIN_SECONDS))
    finally:
        if timer is not None:
            timer.cancel()


def _times_up(duration: timedelta) -> None:
    click.echo(f"\nThe demo ran for {duration.total_seconds():g} s (--duration): stopping.")
    signal.raise_signal(signal.SIGINT)


if __name__ == "__main__":  # pragma: no cover
    main()
