"""``watcher outbox``: what waits to be delivered, and ``drop`` for deliveries nobody can
receive (a notifier removed from the config, or a service gone for good)."""

from __future__ import annotations

import click

from watcher.cli.app import State, WatcherGroup, main, pass_state


@main.group(
    cls=WatcherGroup,
    invoke_without_command=True,
    epilog="""\\b
Examples:
  watcher outbox                          # waiting deliveries per notifier
  watcher outbox drop --notifier old-desk""",
)
@click.pass_context
def outbox(ctx: click.Context) -> None:
    """Deliveries waiting per notifier; `drop` gives up on a notifier's."""
    if ctx.invoked_subcommand is not None:
        return
    from watcher.cli.output import Column, emit

    state = ctx.find_object(State)
    assert state is not None
    config = state.config()
    with state.store() as store:
        records = store.alerts(undelivered=True)
    waiting: dict[str, dict[str, int]] = {}
    for alert in records:
        for delivery in alert.deliveries:
            if delivery.state in ("pending", "retrying"):
                counts = waiting.setdefault(delivery.notifier, {"pending": 0, "retrying": 0})
                counts[delivery.state] += 1
    rows = [
        {"notifier": name, **counts, "configured": name in config.notifiers}
        for name, counts in sorted(waiting.items())
    ]
    columns = [
        Column("notifier", "notifier"),
        Column("pending", "pending"),
        Column("retrying", "retrying"),
        Column("note", "configured", lambda on: "" if on else "not in the config: drop?"),
    ]
    emit(rows, columns, empty="nothing waits in the outbox", mask=config.mask)


@outbox.command(
    epilog="""\\b
Example:
  watcher outbox drop --notifier old-desk"""
)
@click.option("--notifier", required=True, metavar="NAME", help="The notifier to give up on.")
@pass_state
def drop(state: State, notifier: str) -> None:
    """Give up on every delivery still waiting for notifier NAME: they are marked "gave up"
    (`watcher alerts` shows them so); the alerts themselves stay. Runs beside `watcher run`."""
    from watcher.clock import utc_now
    from watcher.storage.store import Store

    config = state.config()
    store = Store.open(config.database_url(), create=False)
    try:
        dropped = store.drop_deliveries(notifier, utc_now())
    finally:
        store.close()
    from watcher.cli.output import plural

    click.echo(f"{plural(dropped, 'delivery', 'deliveries')} to {notifier} dropped")
    if notifier in config.notifiers:
        click.echo(
            f"note: {notifier} is still in {config.source}: new alerts will go to it", err=True
        )
