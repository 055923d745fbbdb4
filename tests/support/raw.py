"""A TCP server on 127.0.0.1 that answers with bytes written by scripts, not by http.server.

For what a well-behaved server library refuses to send: header values with non-ASCII bytes,
obs-text or control characters, repeated headers, a TLS handshake answered in plain HTTP,
a body cut by a reset. Requests are logged like :class:`support.server.LoopbackServer`'s.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from support.server import Closing, Headers

__all__ = ["RawRequest", "RawServer", "Script", "raw_reply"]

Script = Callable[[socket.socket, threading.Event], None]
RawHeader = tuple[bytes | str, bytes | str]


@dataclass(frozen=True)
class RawRequest:
    """A request head as the server read it (header values decoded as Latin-1)."""

    path: str
    headers: Headers


class RawServer(Closing):
    """A TCP server on 127.0.0.1 whose answers are scripts writing bytes to the socket.

    The request head is read first and the script for its path runs (query ignored); the
    ``None`` route gets connections that do not speak plain HTTP, such as a TLS ClientHello.
    Scripts get an event that is set when the server closes, so endless ones can stop. One
    request per connection: the connection is closed when the script returns.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._routes: dict[str | None, Script] = {}
        self._log: list[RawRequest] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"raw-{self.port}", daemon=True)
        self._thread.start()

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def route(self, path: str | None, script: Script) -> None:
        with self._lock:
            self._routes[path] = script

    def requests_to(self, path: str) -> list[RawRequest]:
        """Every plain-HTTP request made so far to ``path`` (query ignored), oldest first."""
        with self._lock:
            return [r for r in self._log if urlsplit(r.path).path == path]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                request = _read_request(conn)
                with self._lock:
                    if request is not None:
                        self._log.append(request)
                    script = self._routes.get(urlsplit(request.path).path if request else None)
                if script is not None:
                    script(conn, self._stop)
                else:
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass  # the client hung up: what the scripts provoke

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()


def _read_request(conn: socket.socket) -> RawRequest | None:
    """The request head, or None when the client does not speak plain HTTP."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if not data[:1].isalpha():  # a TLS record starts with 0x16
            return None
    request_line, *lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    parts = request_line.split(" ", 2)
    if len(parts) < 3:
        return None
    fields = [line.partition(":") for line in lines]
    return RawRequest(parts[1], Headers((name, value.strip()) for name, _, value in fields))


def raw_reply(status: int, headers: Sequence[RawHeader] = (), body: bytes = b"") -> Script:
    """A script answering ``status`` with exactly these header lines (str is sent as UTF-8,
    bytes as they are), then Content-Length, ``Connection: close`` and the body."""
    lines = [f"HTTP/1.1 {status} Whatever".encode()]
    for name, value in headers:
        lines.append(_bytes(name) + b": " + _bytes(value))
    lines += [f"Content-Length: {len(body)}".encode(), b"Connection: close"]
    message = b"\r\n".join(lines) + b"\r\n\r\n" + body

    def script(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(message)

    return script


def _bytes(text: bytes | str) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8")
