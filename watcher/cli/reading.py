"""The commands that read the database: ``alerts``, ``history``, ``diff``, ``feeds``,
``status``. They take no lock, so they run beside ``watcher run``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from watcher.cli.app import State, duration_option, main, out, pass_state, when

if TYPE_CHECKING:
    from watcher.config.models import Config
    from watcher.records import AlertRecord, ArticleEvent, ArticleState, FeedState, VersionRecord
    from watcher.storage.store import Store


ALERT_FIELDS = (
    "id, rule, event, feed, url, title, version, created_at, matched, classes, added, "
    "removed, delivered, deliveries (notifier, state, attempts, next_try_at, sent_at, "
    "last_error), detail"
)


@main.command(
    epilog=f"""\b
Examples:
  watcher alerts --since 2h
  watcher alerts --rule ceasefire --undelivered
  watcher alerts | grep ceasefire | cut -f6       # the URLs (tab-separated when piped)
  watcher alerts --json | jq '.[].url'

\b
--json fields: {ALERT_FIELDS}."""
)
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@click.option("--since", metavar="DURATION", help="Only alerts of the last DURATION (e.g. 2h).")
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N alerts.")
@click.option("--rule", "rules", multiple=True, metavar="NAME", help="Only this rule (repeatable).")
@click.option("--feed", "feeds", multiple=True, metavar="NAME", help="Only this feed (repeatable).")
@click.option("--undelivered", is_flag=True, help="Only alerts some notifier does not have yet.")
@pass_state
def alerts(
    state: State,
    as_json: bool,
    since: str | None,
    limit: int | None,
    rules: tuple[str, ...],
    feeds: tuple[str, ...],
    undelivered: bool,
) -> None:
    """Recorded alerts, oldest first, and where each stands with each notifier."""
    from watcher.cli.output import Column, emit

    start = _since(since)
    config = state.config()
    with state.reader() as store:
        records = store.alerts(
            since=start, limit=limit, rules=rules, feeds=feeds, undelivered=undelivered
        )
    base_url = config.web.base_url if config.web is not None else None
    if as_json:
        rows = [alert_json(a, base_url) for a in records]
    else:
        configured = set(config.notifiers)
        rows = [
            {
                **alert_json(a, base_url),
                "created": a.created_at,
                "delivery": delivery_summary(a, configured),
            }
            for a in records
        ]
    columns = [
        Column("id", "id"),
        Column("when (UTC)", "created", when),
        Column("rule", "rule"),
        Column("event", "event"),
        Column("feed", "feed"),
        Column("url", "url"),
        Column("v", "version"),
        Column("title", "title"),
        Column("matched", "matched", ", ".join),
        Column("class", "classes", ", ".join),
        Column("delivery", "delivery"),
    ]
    emit(rows, columns, as_json=as_json, empty="no alerts recorded", mask=config.mask)


def delivery_summary(alert: AlertRecord, configured: set[str] | None = None) -> str:
    """Per notifier: sent, waiting, retrying (tries, next, why) or gave up (why); a notifier
    no longer in the config (``configured``) is named as such."""
    if alert.delivery_state == "new":
        return "not routed yet"
    if not alert.deliveries:
        return "no notifier"
    parts = []
    for d in alert.deliveries:
        gone = configured is not None and d.notifier not in configured
        if gone and d.state in ("pending", "retrying"):
            parts.append(
                f"{d.notifier}: waiting, but no longer in the config "
                f"(`watcher outbox drop --notifier {d.notifier}`)"
            )
        elif d.state == "sent":
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
    return "; ".join(parts)


def _since(since: str | None) -> datetime | None:
    from watcher.clock import utc_now

    if since is None:
        return None
    return utc_now() - duration_option(since, "--since")


def alert_json(alert: AlertRecord, base_url: str | None = None) -> dict[str, Any]:
    """One alert of ``--json`` (the web API gives the same: one function for both)."""
    from watcher.delivery.links import alert_json as as_json

    return as_json(alert, base_url)


@main.command(
    epilog="""\b
Examples:
  watcher history https://news.example.org/story
  watcher history https://news.example.org/story --json

\b
--json: {"article": {url, feeds, status, first_seen, checks, next_check_at, last_error,
removed_at}, "versions": [{number, current, classes, fetched_at, source, words, times_seen,
last_seen_at, title}], "events": [{kind (removed, restored, moved), at, reason, url,
status}]}. classes: what kind of edit made the version (typo, wording, substance,
headline, correction); a version the page went back to is seen more than once."""
)
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="A JSON object instead of a table.")
@pass_state
def history(state: State, url: str, as_json: bool) -> None:
    """Every stored version of the article at URL, and when it was taken down, restored or
    moved."""
    from watcher.cli.output import Column, emit, to_json

    with state.store() as store:
        article = find_article(store, url)
        versions = store.versions(article.id)
        events = store.article_events(article.id)
    rows = [
        {
            "number": v.number,
            "current": v.number == article.current_version,
            "classes": v.classes.split(),
            "fetched_at": v.fetched_at,
            "source": v.source,
            "words": len(v.text.split()),
            "times_seen": v.times_seen,
            "last_seen_at": v.last_seen_at,
            "title": v.title,
        }
        for v in versions
    ]
    if as_json:
        payload = {"article": article_json(article), "versions": rows}
        click.echo(to_json({**payload, "events": [e.shown() for e in events]}))
        return
    print_article_header(article)
    columns = [
        Column("v", "number"),
        Column("current", "current", lambda current: "←" if current else ""),
        Column("class", "classes", lambda classes: ", ".join(classes) or "—"),
        Column("fetched (UTC)", "fetched_at", when),
        Column("source", "source"),
        Column("words", "words"),
        Column("seen", "times_seen", lambda times: f"{times}x"),
        Column("last seen (UTC)", "last_seen_at", when),
        Column("title", "title"),
    ]
    emit(rows, columns, empty="no version stored yet")
    for event in events:
        click.echo(f"{when(event.at)}  {event_line(event)}")


def event_line(event: ArticleEvent) -> str:
    """One take-down, restore or move, as history says it."""
    if event.kind == "moved":
        return event.reason  # "moved to URL"
    return f"{event.kind}: {event.reason}"


def article_json(article: ArticleState) -> dict[str, Any]:
    return {
        "url": article.url,
        "link": article.link,
        "feeds": list(article.feeds),
        "status": article.status,
        "first_seen": article.first_seen,
        "last_checked": article.last_checked,
        "checks": article.checks,
        "next_check_at": article.next_check_at,
        "current_version": article.current_version,
        "last_error": article.last_error,
        "removed_at": article.removed_at,
    }


def find_article(store: Store, url: str) -> ArticleState:
    from watcher.pipeline.urls import canonical_url

    article = store.find_article(url) or store.find_article(canonical_url(url))
    if article is None:
        raise click.ClickException(f"no tracked article with URL {url}")
    return article


def print_article_header(article: ArticleState) -> None:
    from watcher.cli.output import plural

    click.echo(f"{article.url}")
    click.echo(
        f"feeds: {', '.join(article.feeds) or '—'} · first seen {when(article.first_seen)} · "
        f"{plural(article.checks, 'check')} · {article.status}"
        + (f" · REMOVED since {when(article.removed_at)}" if article.removed_at else "")
        + (f" · next check {when(article.next_check_at)}" if article.next_check_at else "")
    )
    if article.last_error:
        click.echo(f"last error: {article.last_error}")


@main.command(
    epilog="""\b
Examples:
  watcher diff https://news.example.org/story            # the latest change, as it happened
  watcher diff https://news.example.org/story --from 1   # everything since version 1
  watcher diff https://news.example.org/story --json

\b
--json: {url, from, to, words_added, words_removed, headline_changed, added, removed,
ops: [[op, text], ...]} with op -1 removed, 0 same, 1 added.

\b
Without --from and --to: from the version the page showed before its latest change to the
one it shows now (after a revert, the rollback: the newer version → the older one)."""
)
@click.argument("url")
@click.option(
    "--from",
    "from_",
    type=int,
    metavar="N",
    help="Old version (default: the one live before; with --to, the one before --to).",
)
@click.option("--to", type=int, metavar="M", help="New version (default: the one live now).")
@click.option("--json", "as_json", is_flag=True, help="A JSON object instead of the diff.")
@pass_state
def diff(state: State, url: str, from_: int | None, to: int | None, as_json: bool) -> None:
    """Word diff between two versions of the article at URL."""
    from rich.text import Text

    from watcher.cli.output import is_terminal, to_json
    from watcher.pipeline.diff import versions_change

    with state.store() as store:
        article = find_article(store, url)
        versions = {v.number: v for v in store.versions(article.id)}
        furniture = store.site_furniture(article.host)
    old, new = _versions_to_compare(versions, from_, to, article)
    change = versions_change(old, new, furniture)
    if as_json:
        payload = {
            "url": article.url,
            "from": old.number,
            "to": new.number,
            "words_added": change.words_added,
            "words_removed": change.words_removed,
            "headline_changed": change.headline_changed,
            "added": list(change.added),
            "removed": list(change.removed),
            "ops": [list(op) for op in change.ops],
        }
        click.echo(to_json(payload))
        return
    click.echo(
        f"{article.url}: version {old.number} → {new.number} "
        f"(+{change.words_added} / -{change.words_removed} words)"
    )
    rendered = Text()
    terminal = is_terminal()
    for op, text in change.ops:
        if not terminal:
            rendered.append(text if op == 0 else (f"[-{text}-]" if op < 0 else f"{{+{text}+}}"))
        else:
            rendered.append(text, style={0: "", -1: "red strike", 1: "green"}[op])
    out().print(rendered)


def _versions_to_compare(
    versions: dict[int, VersionRecord], from_: int | None, to: int | None, article: ArticleState
) -> tuple[VersionRecord, VersionRecord]:
    """The two versions `watcher diff` compares, or a usage error naming the option at fault."""
    if not versions:
        raise click.UsageError("no version stored yet: nothing to compare")
    if from_ is None and to is None:
        live = article.latest_change
        if live is not None and set(live) <= set(versions):
            return versions[live[0]], versions[live[1]]
    new = _pick(versions, to if to is not None else max(versions), "--to")
    if from_ is None:
        if new.number - 1 not in versions:
            which = "only one version is stored" if len(versions) == 1 else (
                f"version {new.number} is the first"
            )
            raise click.UsageError(f"{which}: nothing before it to compare with")
        return versions[new.number - 1], new
    return _pick(versions, from_, "--from"), new


def _pick(versions: dict[int, VersionRecord], number: int, option: str) -> VersionRecord:
    if number not in versions:
        raise click.BadParameter(
            f"no version {number}; stored: {', '.join(map(str, sorted(versions)))}",
            param_hint=option,
        )
    return versions[number]


@main.command(
    epilog="""\b
Examples:
  watcher feeds
  watcher feeds --json | jq '.[] | select(.errors > 0)'
  watcher feeds --opml > subscriptions.opml

\b
--json fields: feed, enabled, url, last_poll, status, gone, next_poll, articles, errors,
live, last_error (a feed configured since the last poll has nulls and zeros). live: its
articles that are live pages now (see `watcher status`)."""
)
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@click.option(
    "--opml", is_flag=True, help="The configured feeds as OPML 2.0 (for a feed reader) instead."
)
@pass_state
def feeds(state: State, as_json: bool, opml: bool) -> None:
    """Each feed's state: last poll, errors, articles."""
    from watcher.cli.live import live_pages, live_per_feed
    from watcher.cli.output import Column, emit

    config = state.config()
    if opml:
        from watcher.config.opml import feeds_to_opml

        # A news sitemap is not something a feed reader can subscribe to.
        listed = [(f.name, f.url, f.tags) for f in config.feeds if not f.sitemap]
        click.echo(config.mask(feeds_to_opml(listed, "watcher feeds")), nl=False)
        return
    configured = [(feed, True) for feed in config.feeds]
    configured += [(feed, False) for feed in config.muted_feeds]
    with state.reader() as store:
        states = {s.name: s for s in store.feed_states([feed.name for feed, _ in configured])}
        live = live_per_feed(live_pages(config, store))
    rows = [
        {**_feed_row(feed.name, feed.url, states.get(feed.name)), "enabled": enabled}
        | {"live": live[feed.name]}
        for feed, enabled in sorted(configured, key=lambda item: item[0].name)
    ]
    columns = [
        Column("feed", "feed"),
        Column("last poll (UTC)", "last_poll", lambda t: when(t) if t else "never"),
        Column("status", "status", lambda status: str(status or "—")),
        Column("next poll", "next_poll", when),
        Column("articles", "articles"),
        Column("errors", "errors"),
        Column("live", "live"),
        Column("note", "enabled", lambda on: "" if on else "muted (enabled: false)"),
        Column("last error", "last_error"),
    ]
    for row in rows:
        if row["gone"]:
            row["last_error"] = f"gone: disabled; {row['last_error'] or ''}".rstrip("; ")
    emit(rows, columns, as_json=as_json, empty="no feeds configured", mask=config.mask)


def _feed_row(name: str, url: str, s: FeedState | None) -> dict[str, Any]:
    """One feed of `watcher feeds` (``s`` None: configured since the last check or run)."""
    return {
        "feed": name,
        "url": url,
        "last_poll": s.last_polled_at if s else None,
        "status": s.last_status if s else None,
        "gone": bool(s and s.disabled_at),
        "next_poll": s.next_poll_at if s else None,
        "articles": s.articles if s else 0,
        "errors": s.error_streak if s else 0,
        "last_error": s.last_error if s else None,
    }


@main.command(
    epilog="""\b
Examples:
  watcher status
  watcher status --json | jq .outbox

\b
--json: {"feeds": [{feed, last_poll, next_poll, last_status, error_streak, last_error,
tracking, retired, versions, alerts, live}], "live_pages": [{id, url, title, feeds, changes,
checks}], "outbox": {state: count}}; with `queue: procrastinate` also "workers": [{id, host,
pid, concurrency, started, last_seen, processed, failed, state}] and "queue": {"todo": {task:
count}, doing, stalled, failed}. A live page changed on live_pages.changes of its last
live_pages.checks checks (default 4 of 6): its alerts go out as one digest per article."""
)
@click.option("--json", "as_json", is_flag=True, help="A JSON object instead of a table.")
@pass_state
def status(state: State, as_json: bool) -> None:
    """Each configured feed's polls, errors, articles, versions and alerts; the outbox.

    Only reads (no lock), so it runs beside `watcher run`. Articles are counted per feed:
    one in two feeds counts in both."""
    from watcher.cli.live import live_pages, live_per_feed, print_live
    from watcher.cli.output import to_json
    from watcher.cli.worker import print_workers, workers_section

    config = state.config()
    with state.reader() as store:
        states = {s.name: s for s in store.feed_states()}
        totals = store.feed_totals()
        backlog = store.outbox_backlog()
        workers = workers_section(config, store)
        live = live_pages(config, store)
    per_feed = live_per_feed(live)
    feeds = [
        {
            **feed_status(feed.name, states.get(feed.name), totals.get(feed.name, {})),
            "live": per_feed[feed.name],
        }
        for feed in config.feeds
    ]
    if as_json:
        report = {"feeds": feeds, "live_pages": live, "outbox": backlog, **(workers or {})}
        click.echo(to_json(report, config.mask))
        return
    _print_status(feeds, backlog, config)
    print_live(live, config)
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


def _print_status(feeds: list[dict[str, Any]], backlog: dict[str, int], config: Config) -> None:
    from watcher.cli.output import Column, emit

    columns = [
        Column("feed", "feed"),
        Column("last poll (UTC)", "last_poll", when),
        Column("next poll", "next_poll", when),
        Column("status", "last_status", lambda status: str(status or "—")),
        Column("errors", "error_streak"),
        *(Column(key, key) for key in STATUS_COUNTS),
        Column("live", "live"),
        Column("last error", "last_error"),
    ]
    emit(feeds, columns, empty="no feeds configured", mask=config.mask)
    held = ", ".join(f"{count} {state}" for state, count in sorted(backlog.items()) if count)
    click.echo(f"outbox: {held or 'empty'}")
