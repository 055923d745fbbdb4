"""The commands about the config itself: ``validate``, ``rules``, ``notify-test``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from watcher.cli.app import State, main, out, pass_state

if TYPE_CHECKING:
    from watcher.config.models import Config, RuleConfig


@main.command(
    epilog="""\b
Examples:
  watcher validate -c /etc/watcher/watcher.yaml
  watcher validate && systemctl reload watcher"""
)
@pass_state
def validate(state: State) -> None:
    """Check the config file (notifiers and templates too) and say what it sets up.

    Warns (exit 0) about what loads but is likely a mistake: no feeds, a feed polled more
    than once a minute on someone else's server, a rule with no condition."""
    from watcher.cli.output import plural
    from watcher.clock import utc_now
    from watcher.delivery.notifiers import check_delivery

    config = state.config()
    check_delivery(config, utc_now())
    muted = len(config.muted_feeds) + len(config.muted_rules)
    click.echo(
        f"{config.source}: OK — {plural(len(config.feeds), 'feed')}, "
        f"{plural(len(config.rules), 'rule')}, {plural(len(config.notifiers), 'notifier')}"
        + (f" ({muted} muted)" if muted else "")
        + f"; database {config.mask(config.database_url())}"
    )
    for warning in config_warnings(config):
        click.echo(f"warning: {config.mask(warning)}", err=True)


# Polling faster than this is for your own servers only.
POLITE_INTERVAL = 60


def config_warnings(config: Config) -> list[str]:
    """What loads but is probably not what the user meant."""
    from urllib.parse import urlsplit

    warnings = []
    if not config.declared_feeds:
        warnings.append(f"{config.source}: no feeds configured: nothing will be watched")
    for feed in config.feeds:
        interval = config.settings_for(feed).interval.total_seconds()
        host = urlsplit(feed.url).hostname or ""
        if interval < POLITE_INTERVAL and not _local_host(host):
            warnings.append(
                f"feed {feed.name}: polled every {interval:g} s on {host}: under a minute is "
                "impolite to someone else's server (and may get you blocked)"
            )
    for rule in config.rules:
        if not (rule.keywords or rule.regex or rule.feeds or rule.tags or rule.min_change):
            warnings.append(
                f"rule {rule.name}: no condition (keywords, regex, feeds, tags, min_change): "
                f"it fires on every {' and every '.join(rule.events)} article"
            )
    return warnings


def _local_host(host: str) -> bool:
    import ipaddress

    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


@main.command(
    "notify-test",
    epilog="""\b
Example:
  watcher notify-test desk""",
)
@click.argument("name")
@pass_state
def notify_test(state: State, name: str) -> None:
    """Send a test message through notifier NAME and print each service's result.

    Exits 1 when any service failed."""
    import asyncio

    config = state.config()
    if name not in config.notifiers:
        known = ", ".join(sorted(config.notifiers)) or "none defined"
        raise click.BadParameter(f"no notifier {name!r}; known: {known}", param_hint="NAME")
    from watcher.clock import utc_now
    from watcher.delivery.outbox import send_test

    results = asyncio.run(send_test(config, name, utc_now()))
    for result in results:
        verdict = "ok" if result.ok else f"FAILED: {result.error}"
        click.echo(config.mask(f"{result.target.label} ({result.target.body_format}): {verdict}"))
    if not all(result.ok for result in results):
        raise SystemExit(1)


@main.command(
    epilog="""\b
Example:
  watcher rules -c /etc/watcher/watcher.yaml"""
)
@pass_state
def rules(state: State) -> None:
    """What rules can say, and the rules this config sets."""
    from rich.markup import escape

    from watcher.config.loading import config_path
    from watcher.pipeline.rules import documentation

    console = out()
    console.print("[bold]Rule conditions[/bold] (a rule fires when all it sets hold):")
    for kind, doc in documentation():
        console.print(f"  [bold]{kind}[/bold]: {escape(doc)}")
    console.print(
        r"  [bold]events[/bold]: `events: \[new, changed, removed, restored]` — which events "
        "the rule fires on (default: new and changed). `new`: an article seen for the first "
        "time; `changed`: its text was edited (a revert included); `removed`: it was taken "
        "down (its page answered 404 or 410, or redirected to the site's front page, on two "
        "checks in a row); `restored`: a removed article's page shows it again. For `removed` "
        "and `restored`, text conditions judge the article's text as for `new`. A move (a "
        "permanent redirect to another URL of the site) is followed and shown in `watcher "
        "history`, and raises no event of its own."
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
