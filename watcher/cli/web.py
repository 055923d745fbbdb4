"""``watcher web``: the read-only web view of the database, served alone."""

from __future__ import annotations

import click

from watcher.cli.app import State, main, pass_state

DEFAULT_PORT = 8470


@main.command(
    epilog="""\b
Examples:
  watcher web                          # http://127.0.0.1:8470/
  WATCHER_WEB_TOKEN=... watcher web --host 0.0.0.0   # with web.auth set in the config"""
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535))
@pass_state
def web(state: State, host: str, port: int) -> None:
    """Serve the web view: every version and diff, Atom feeds of changes, a JSON API.

    Reads only (no lock): runs beside `watcher run`. Anything but loopback needs `web.auth`
    in the config."""
    import asyncio
    import logging

    from watcher.storage.store import Store
    from watcher.web.app import archive_of, create_app
    from watcher.web.serve import bind, describe, require_auth_off_loopback, server

    state.setup_logging(logging.INFO)
    config = state.config()
    settings = config.web
    auth = settings.auth if settings is not None else None
    require_auth_off_loopback(host, auth)
    sock = bind(host, port)
    store = Store.open(config.database_url(), create=False, read_only=True)
    try:
        base_url = settings.base_url if settings else None
        app = create_app(store, base_url=base_url, auth=auth, archive=archive_of(config))
        click.echo(f"watcher: {describe(host, port, auth)}; Ctrl-C stops it", err=True)
        asyncio.run(server(app, own_signals=True).serve(sockets=[sock]))
    finally:
        store.close()
        sock.close()
