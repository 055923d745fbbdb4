"""The web view (:mod:`watcher.web`) served by ``watcher run`` on ``web.listen``, with the
daemon's ``/metrics`` and ``/healthz`` on the same port, so a service has one port.

The port is bound before the database is opened (a busy port stops the daemon having
touched nothing, as the metrics endpoint does); the app starts once the writer has created
or upgraded the schema, on a read-only store of its own: the view never writes, even here.
It stops before the drain, which waits for every task.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn

    from watcher.config.models import Config
    from watcher.service.exporter import Exporter
    from watcher.storage.store import Store

log = logging.getLogger(__name__)


class WebView:
    def __init__(self, config: Config, exporter: Exporter) -> None:
        self.config = config
        self.exporter = exporter
        self._socket: socket.socket | None = None
        self._store: Store | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    def bind(self) -> None:
        from watcher.web.serve import bind

        web = self.config.web
        if web is not None and web.listen is not None:
            self._socket = bind(web.listen.host, web.listen.port)
            # /metrics and /healthz are answered here: keep the backlog gauge fresh for them.
            self.exporter.served_elsewhere = True

    async def start(self) -> None:
        from watcher.storage.store import Store
        from watcher.web.app import Probes, archive_of, create_app
        from watcher.web.serve import describe, serve_on_loop

        web = self.config.web
        if self._socket is None or web is None or web.listen is None:
            return
        self._store = Store.open(self.config.database_url(), create=False, read_only=True)
        probes = Probes(metrics=self.exporter.scrape, health=self._health)
        app = create_app(
            self._store,
            base_url=web.base_url,
            auth=web.auth,
            probes=probes,
            archive=archive_of(self.config),
        )
        self._server, self._task = await serve_on_loop(app, self._socket)
        log.info(
            "%s, with /metrics and /healthz", describe(web.listen.host, web.listen.port, web.auth)
        )

    def _health(self) -> tuple[int, dict[str, Any]]:
        health = self.exporter.health()
        return health.status, health.body

    async def stop(self) -> None:
        """Stop serving and close the view's store. Idempotent."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.gather(self._task, return_exceptions=True)
            self._server = self._task = None
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None


@asynccontextmanager
async def serve_web(config: Config, exporter: Exporter) -> AsyncIterator[WebView]:
    view = WebView(config, exporter)
    view.bind()
    try:
        yield view
    finally:
        await view.stop()
