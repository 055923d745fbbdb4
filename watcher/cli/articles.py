"""The commands about articles: ``articles`` (list and search), ``show`` (one version's
text) and ``why`` (what the last checks found and what each rule made of it). Read-only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from watcher.cli.app import State, duration_option, main, pass_state, when

if TYPE_CHECKING:
    from watcher.config.models import Config
    from watcher.records import ArticleState, VersionRecord

ARTICLE_FIELDS = (
    "id, url, title, feeds, status, first_seen, last_checked, versions, last_changed, alerts"
)


@main.command(
    epilog=f"""\\b
Examples:
  watcher articles --feed wt-world
  watcher articles --search ceasefire --changed-since 1d
  watcher articles | cut -f1                  # the URLs (tab-separated when piped)

\\b
--json fields: {ARTICLE_FIELDS}."""
)
@click.option("--feed", "feeds", multiple=True, metavar="NAME", help="Only this feed (repeatable).")
@click.option("--search", metavar="TEXT", help="Headline or text (of any version) contains TEXT.")
@click.option("--changed-since", metavar="DURATION", help="A version stored in the last DURATION.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the N most recently changed.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@pass_state
def articles(
    state: State,
    feeds: tuple[str, ...],
    search: str | None,
    changed_since: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Tracked articles, the most recently changed last: their feeds, versions and alerts."""
    from dataclasses import asdict

    from watcher.cli.output import Column, emit
    from watcher.clock import utc_now

    since = utc_now() - duration_option(changed_since, "--changed-since") if changed_since else None
    config = state.config()
    with state.store() as store:
        found = store.list_articles(
            feeds=list(feeds) or None, search=search, changed_since=since, limit=limit
        )
    rows = [{**asdict(article), "feeds": list(article.feeds)} for article in found]
    columns = [
        Column("url", "url"),
        Column("title", "title"),
        Column("feeds", "feeds", ", ".join),
        Column("v", "versions"),
        Column("last changed (UTC)", "last_changed", when),
        Column("alerts", "alerts"),
        Column("status", "status"),
    ]
    emit(rows, columns, as_json=as_json, empty="no articles match", mask=config.mask)


@main.command(
    epilog="""\\b
Examples:
  watcher show https://news.example.org/story              # the current version
  watcher show https://news.example.org/story --version 1  # as first stored
  watcher show https://news.example.org/story --version 1 --raw > v1.html  # as served"""
)
@click.argument("url")
@click.option("--version", "number", type=int, metavar="N", help="Version N (default: current).")
@click.option("--json", "as_json", is_flag=True, help="A JSON object instead of the text.")
@click.option(
    "--raw",
    is_flag=True,
    help="The page as the server sent it (gzip undone), from the WARC archive.",
)
@click.option("--headers", is_flag=True, help="With --raw: the status line and headers first.")
@pass_state
def show(
    state: State, url: str, number: int | None, as_json: bool, raw: bool, headers: bool
) -> None:
    """The text of one stored version of the article at URL, as it was extracted; with
    --raw, the original response it was made from (`archive: {warc: DIR}` keeps them)."""
    from watcher.cli.output import to_json
    from watcher.cli.reading import find_article

    with state.store() as store:
        article = find_article(store, url)
        versions = {v.number: v for v in store.versions(article.id)}
    version = _chosen_version(article, versions, number)
    if raw or headers:
        from watcher.cli.archive import print_original

        print_original(state, version, with_headers=headers)
        return
    if as_json:
        click.echo(to_json(_version_json(article, version)))
        return
    click.echo(f"{version.title}\n")
    click.echo(version.text)
    click.echo(
        f"\n— {article.url} · version {version.number} of {len(versions)} · fetched "
        f"{when(version.fetched_at)} UTC from the {version.source}",
        err=True,
    )


def _chosen_version(
    article: ArticleState, versions: dict[int, VersionRecord], number: int | None
) -> VersionRecord:
    if not versions:
        raise click.UsageError(f"{article.url}: no version stored yet")
    chosen = number if number is not None else (article.current_version or max(versions))
    if chosen not in versions:
        stored = ", ".join(map(str, sorted(versions)))
        raise click.BadParameter(f"no version {chosen}; stored: {stored}", param_hint="--version")
    return versions[chosen]


def _version_json(article: ArticleState, version: VersionRecord) -> dict[str, Any]:
    return {
        "url": article.url,
        "version": version.number,
        "current": version.number == article.current_version,
        "title": version.title,
        "text": version.text,
        "source": version.source,
        "fetched_at": version.fetched_at,
        "times_seen": version.times_seen,
        "last_seen_at": version.last_seen_at,
    }


@main.command(
    epilog="""\\b
Example:
  watcher why https://news.example.org/story"""
)
@click.argument("url")
@pass_state
def why(state: State, url: str) -> None:
    """Why the article at URL did or did not alert: its last checks, its versions, and what
    each rule of the config makes of its latest version (matched, or the condition that
    failed)."""
    from watcher.cli.reading import find_article, print_article_header

    config = state.config()
    with state.store() as store:
        article = find_article(store, url)
        versions = store.versions(article.id)
        furniture = store.site_furniture(article.host)
        recorded = store.alerts(article_id=article.id)
    print_article_header(article)
    if not versions:
        click.echo("no version stored yet: nothing was judged (see the last error above)")
        return
    latest = versions[-1]
    click.echo(
        f"{len(versions)} version{'s' if len(versions) != 1 else ''}; the latest, "
        f"{latest.number}, fetched {when(latest.fetched_at)} UTC from the {latest.source}"
    )
    for alert in recorded:
        click.echo(f"  alert {alert.id}: rule {alert.rule}, {alert.event}, version {alert.version}")
    if not recorded:
        click.echo("  no alert recorded for it")
    click.echo(f"\nThe rules of {config.source} on version {latest.number}:")
    for line in judge_rules(config, article, versions, furniture):
        click.echo(config.mask(f"  {line}"))


def judge_rules(
    config: Config,
    article: ArticleState,
    versions: list[VersionRecord],
    furniture: frozenset[str] | set[str] | tuple[str, ...] | Any,
) -> list[str]:
    """One line per rule: what it made of the latest version against the one before (or, for
    the first, as a new article)."""
    from watcher.pipeline.diff import compute_change, document
    from watcher.pipeline.normalise import compared_text, normalise
    from watcher.pipeline.rules import Rule, Subject

    # The rules judge the compared text: the body and the paragraphs the extractor dropped.
    new = versions[-1]
    title, body = normalise(new.title), compared_text(new.text, new.extra, furniture)
    change = None
    if len(versions) > 1:
        old = versions[-2]
        change = compute_change(
            normalise(old.title), compared_text(old.text, old.extra, furniture), title, body
        )
    tags = frozenset(
        tag for feed in config.configured_feeds(article.feeds) if feed for tag in feed.tags
    )
    event = "new" if change is None else "changed"
    subject = Subject(event, article.feeds, tags, document(title, body), change)
    lines = [_rule_line(Rule.from_config(rule), subject) for rule in config.rules]
    lines += [f"{rule.name}: muted (enabled: false)" for rule in config.muted_rules]
    return lines or ["(no rules configured)"]


def _rule_line(rule: Any, subject: Any) -> str:
    """``matched`` with the reasons, or the first condition that did not hold."""
    if subject.event not in rule.events:
        fires_on = ", ".join(sorted(rule.events))
        return f"{rule.name}: no — fires on {fires_on}, this is {subject.event}"
    reasons = []
    for condition in rule.conditions:
        verdict = condition.test(subject)
        if verdict is None:
            return f"{rule.name}: no — {_failed(condition, subject)}"
        if verdict.reason:
            reasons.append(verdict.reason)
    return f"{rule.name}: MATCHES" + (f" ({'; '.join(reasons)})" if reasons else "")


def _failed(condition: Any, subject: Any) -> str:
    kind = condition.kind
    if kind == "scope":
        wanted = sorted(condition.feeds) + [f"tag:{t}" for t in sorted(condition.tags)]
        return f"only for {', '.join(wanted)}; the article is in {', '.join(subject.feeds) or '—'}"
    if kind == "min_change":
        words = subject.change.words_changed if subject.change else 0
        return f"min_change {condition.words}: {words} words changed"
    labels = ", ".join(label for label, _ in condition.patterns)
    where = "in the article" if subject.change is None else "in the added or removed text"
    return f"{kind} {labels}: not found {where}"
