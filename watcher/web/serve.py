"""Serving the app with uvicorn: alone (``watcher web``) or on the daemon's event loop.

The socket is bound here, before anything else, so that a busy port is one clear line at
start-up. On the daemon's loop uvicorn must leave the signals alone: the daemon's own
SIGTERM handler drains the work first, then stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from collections.abc import Iterator

import uvicorn

from watcher.config.services import WebAuth, is_loopback
from watcher.errors import WebError
from watcher.web.security import ASGIApp

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        if exc.errno == errno.EADDRNOTAVAIL:
            reason = "no such address on this machine"
        raise WebError(f"cannot listen on {where}: {reason}") from None
    except socket.gaierror as exc:
        sock.close()
        raise WebError(f"cannot listen on {where}: {exc.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def require_auth_off_loopback(host: str, auth: WebAuth | None) -> None:
    if auth is None and not is_loopback(host):
        raise WebError(
            f"listening on {host} (not loopback) needs web.auth in the config: a token or a "
            "password from ${VAR}"
        )


def describe(host: str, port: int, auth: WebAuth | None) -> str:
    """The start-up line: where, and whether a password guards it."""
    where = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
    if auth is None:
        return f"web view on {where} (loopback only, no password)"
    kind = "a bearer token" if auth.token is not None else f"basic auth (user {auth.user})"
    return f"web view on {where}, guarded by {kind}"


class _QuietServer(uvicorn.Server):
    """A uvicorn server that does not take over SIGTERM/SIGINT (the daemon's are kept)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server(app: ASGIApp, *, own_signals: bool) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=5,
    )
    return uvicorn.Server(config) if own_signals else _QuietServer(config)


async def serve_on_loop(
    app: ASGIApp, sock: socket.socket
) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Start serving on this loop; stop with ``server.should_exit = True`` and await the task."""
    web = server(app, own_signals=False)
    task = asyncio.create_task(web.serve(sockets=[sock]))
    return web, task
