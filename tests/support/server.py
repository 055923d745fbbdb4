"""A small HTTP/1.1 server on 127.0.0.1 for tests: routes, canned or computed replies, a log.

Usage::

    with LoopbackServer() as server:
        server.route("/feed.xml", conditional(RSS, "application/rss+xml"))
        server.route("/gone", Reply(status=410))
        fetch(server.url("/feed.xml"))
        assert server.requests_to("/feed.xml")[0].headers["user-agent"].startswith("watcher/")

Routes may be replaced at any time, so a test can make a page change between two fetches.
Unknown paths answer 404. Nothing is logged to stderr.
"""

from __future__ import annotations

import email.utils
import hashlib
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

__all__ = ["Closing", "Handler", "Headers", "LoopbackServer", "Reply", "Request", "conditional"]


class Headers(Mapping[str, str]):
    """Read-only request headers with case-insensitive lookup; repeated names are comma-joined."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        merged: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        self._items = merged

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclass(frozen=True)
class Request:
    """One request as the server saw it; ``path`` includes the query string."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = b""


@dataclass
class Reply:
    """What to answer. A ``str`` body is sent as UTF-8; Content-Length is always set."""

    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Reply]


class Closing:
    """Context-manager behaviour for test servers: ``with`` closes them."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class LoopbackServer(Closing):
    """A threading HTTP server on 127.0.0.1, started on construction: on an ephemeral port, or
    on ``port`` (to come back where a stopped server was)."""

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, Handler] = {}
        self._log: list[Request] = []
        self._httpd = _QuietServer(("127.0.0.1", port), _make_handler_class(self))
        host, port = self._httpd.server_address[:2]
        self.base_url = f"http://{host!s}:{port}"
        # A short poll interval keeps close() (which waits for the next poll) fast.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.02,), name=f"loopback-{port}", daemon=True
        )
        self._thread.start()

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def route(self, path: str, handler: Handler | Reply) -> None:
        """Serve ``path`` (matched exactly, query ignored) with a handler or a fixed reply."""
        with self._lock:
            self._routes[path] = _constant(handler) if isinstance(handler, Reply) else handler

    def requests_to(self, path: str) -> list[Request]:
        """Every request made so far to ``path`` (query ignored), oldest first."""
        with self._lock:
            return [r for r in self._log if _route_key(r.path) == path]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _dispatch(self, request: Request) -> Reply:
        with self._lock:
            self._log.append(request)
            handler = self._routes.get(_route_key(request.path))
        if handler is None:
            return Reply(404, "not found\n")
        try:
            return handler(request)
        except Exception as exc:  # a broken test handler should show up as a 500, not a hang
            return Reply(500, f"handler raised {type(exc).__name__}: {exc}\n")


class _QuietServer(ThreadingHTTPServer):
    # Handler threads must not keep the test process alive, nor make close() wait for
    # clients that still hold a keep-alive connection open.
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-reply (a fetcher aborting an oversized body) are expected
        # in these tests; anything else still gets the default traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


def _constant(reply: Reply) -> Handler:
    def handler(_request: Request) -> Reply:
        return reply

    return handler


def _route_key(path: str) -> str:
    return urlsplit(path).path or "/"


def _make_handler_class(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Idle keep-alive connections end after this many seconds instead of pinning a thread.
        timeout = 10

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            request = Request(self.command, self.path, Headers(self.headers.items()), body)
            self._send(server._dispatch(request))

        def _send(self, reply: Reply) -> None:
            body = reply.body.encode("utf-8") if isinstance(reply.body, str) else reply.body
            headers = Headers(reply.headers.items())
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if "content-type" not in headers and body:
                kind = "text/plain; charset=utf-8" if isinstance(reply.body, str) else None
                self.send_header("Content-Type", kind or "application/octet-stream")
            if "content-length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and reply.status not in (204, 304):
                self.wfile.write(body)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean; the request log is on the server object

    return _Handler


def conditional(
    body: bytes | str,
    content_type: str,
    *,
    etag: bool = True,
    last_modified: str | None = None,
) -> Handler:
    """A handler serving ``body`` with validators, answering 304 when the client's match.

    The ETag is strong and derived from the body, so replacing the route with a new body
    changes it. If-None-Match takes precedence over If-Modified-Since (RFC 9110 13.2.2).
    """
    data = body.encode("utf-8") if isinstance(body, str) else body
    tag = f'"{hashlib.sha256(data).hexdigest()[:20]}"' if etag else None
    validators = {"ETag": tag} if tag else {}
    if last_modified is not None:
        validators["Last-Modified"] = last_modified

    def handler(request: Request) -> Reply:
        if _not_modified(request.headers, tag, last_modified):
            return Reply(304, b"", dict(validators))
        return Reply(200, data, {"Content-Type": content_type, **validators})

    return handler


def _not_modified(headers: Mapping[str, str], tag: str | None, last_modified: str | None) -> bool:
    if "if-none-match" in headers:
        if tag is None:
            return False
        wanted = [t.strip() for t in headers["if-none-match"].split(",")]
        # If-None-Match uses the weak comparison: W/"x" matches "x".
        return "*" in wanted or tag in (w.removeprefix("W/") for w in wanted)
    if "if-modified-since" in headers and last_modified is not None:
        since = _http_date(headers["if-modified-since"])
        modified = _http_date(last_modified)
        # An unreadable date means "no usable validator": serve the full body.
        return since is not None and modified is not None and modified <= since
    return False


def _http_date(value: str) -> datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    # "-0000" parses as naive; HTTP dates are always GMT.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
