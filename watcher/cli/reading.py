"""The commands that read the database: ``alerts``, ``history``, ``diff``, ``feeds``,
``status``. They take no lock, so they run beside ``watcher run``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from watcher.cli.app import State, duration_option, main, out, pass_state, when

if TYPE_CHECKING:
    from watcher.config.models import Config
    from watcher.records import AlertRecord, ArticleState, FeedState, VersionRecord
    from watcher.storage.store import Store


@main.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@click.option("--since", metavar="DURATION", help="Only alerts of the last DURATION (e.g. 2h).")
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N alerts.")
@pass_state
def alerts(state: State, as_json: bool, since: str | None, limit: int | None) -> None:
    """Recorded alerts, oldest first."""
    from rich.table import Table

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
            when(a.created_at),
            a.rule,
            a.event,
            a.feed,
            str(a.version),
            a.title[:60],
            ", ".join(a.matched),
            config.mask(delivery_summary(a)),
        )
    out().print(table if records else "no alerts recorded")


def delivery_summary(alert: AlertRecord) -> str:
    """Per notifier: sent, waiting, retrying (tries, next, why) or gave up (why)."""
    if alert.delivery_state == "new":
        return "not routed yet"
    if not alert.deliveries:
        return "no notifier"
    parts = []
    for d in alert.deliveries:
        if d.state == "sent":
            parts.append(f"{d.notifier}: sent {when(d.sent_at)}")
        elif d.state == "pending":
            parts.append(f"{d.notifier}: waiting")
        elif d.state == "retrying":
            parts.append(
                f"{d.notifier}: retrying ({d.attempts} tries, next {when(d.next_try_at)}; "
                f"{d.last_error})"
            )
        else:
            parts.append(f"{d.notifier}: GAVE UP after {d.attempts} tries ({d.last_error})")
    return "\n".join(parts)


def _since(since: str | None) -> datetime | None:
    from watcher.clock import utc_now

    if since is None:
        return None
    return utc_now() - duration_option(since, "--since")


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


@main.command()
@click.argument("url")
@pass_state
def history(state: State, url: str) -> None:
    """Every stored version of the article at URL."""
    from rich.table import Table

    with state.store() as store:
        article = _article(store, url)
        versions = store.versions(article.id)
    _print_article_header(article)
    table = Table("v", "fetched (UTC)", "source", "words", "seen", "title")
    for v in versions:
        seen = f"{v.times_seen}x, last {when(v.last_seen_at)}" if v.times_seen > 1 else "1x"
        marker = " ←" if v.number == article.current_version else ""
        table.add_row(
            f"{v.number}{marker}",
            when(v.fetched_at),
            v.source,
            str(len(v.text.split())),
            seen,
            v.title,
        )
    out().print(table)


def _article(store: Store, url: str) -> ArticleState:
    from watcher.pipeline.urls import canonical_url

    article = store.find_article(url) or store.find_article(canonical_url(url))
    if article is None:
        raise click.ClickException(f"no tracked article with URL {url}")
    return article


def _print_article_header(article: ArticleState) -> None:
    click.echo(f"{article.url}")
    click.echo(
        f"feeds: {', '.join(article.feeds) or '—'} · first seen {when(article.first_seen)} · "
        f"{article.checks} checks · {article.status}"
        + (f" · next check {when(article.next_check_at)}" if article.next_check_at else "")
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
    from rich.text import Text

    from watcher.pipeline.diff import compute_change
    from watcher.pipeline.normalise import comparable_text, normalise

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
    console = out()
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
    from rich.table import Table

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
            when(s.last_polled_at),
            str(s.last_status or "—") + (" gone: disabled" if s.disabled_at else ""),
            when(s.next_poll_at),
            str(s.articles),
            str(s.error_streak),
            config.mask(s.last_error or ""),
        )
    out().print(table)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON object instead of a table.")
@pass_state
def status(state: State, as_json: bool) -> None:
    """Each configured feed's polls, errors, articles, versions and alerts; the outbox.

    Only reads (no lock), so it runs beside `watcher run`. Articles are counted per feed:
    one in two feeds counts in both."""
    config = state.config()
    from watcher.cli.worker import print_workers, workers_section

    with state.store() as store:
        states = {s.name: s for s in store.feed_states()}
        totals = store.feed_totals()
        backlog = store.outbox_backlog()
        workers = workers_section(config, store)
    feeds = [
        feed_status(feed.name, states.get(feed.name), totals.get(feed.name, {}))
        for feed in config.feeds
    ]
    if as_json:
        report: dict[str, Any] = {"feeds": feeds, "outbox": backlog, **(workers or {})}
        payload = json.dumps(report, indent=2, ensure_ascii=False, default=_iso)
        click.echo(config.mask(payload))
        return
    _print_status(feeds, backlog, config)
    if workers is not None:
        print_workers(workers)


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
    from rich.table import Table

    table = Table("feed", "last poll (UTC)", "next poll", "status", "errors", *STATUS_COUNTS)
    table.add_column("last error")
    for f in feeds:
        table.add_row(
            f["feed"],
            when(f["last_poll"]),
            when(f["next_poll"]),
            str(f["last_status"] or "—"),
            str(f["error_streak"]),
            *(str(f[key]) for key in STATUS_COUNTS),
            config.mask(f["last_error"] or ""),
        )
    console = out()
    console.print(table if feeds else "no feeds configured")
    held = ", ".join(f"{count} {state}" for state, count in sorted(backlog.items()) if count)
    console.print(f"outbox: {held or 'empty'}")
