"""The commands about the config itself: ``validate``, ``rules``, ``notify-test``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from watcher.cli.app import State, main, out, pass_state

if TYPE_CHECKING:
    from watcher.config.models import RuleConfig


@main.command()
@pass_state
def validate(state: State) -> None:
    """Check the config file (notifiers and templates too) and say what it sets up."""
    from watcher.clock import utc_now
    from watcher.delivery.outbox import delivery_setup

    config = state.config()
    delivery_setup(config, utc_now())
    click.echo(
        f"{config.source}: OK — {len(config.feeds)} feeds, {len(config.rules)} rules, "
        f"{len(config.notifiers)} notifiers; database {config.mask(config.database_url())}"
    )


@main.command("notify-test")
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


@main.command()
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
