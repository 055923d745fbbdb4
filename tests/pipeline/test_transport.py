"""watcher.pipeline.transport: httpx on plain asyncio sockets, against real TCP and TLS
servers on loopback (keep-alive, a server closing idle connections, back-pressure both
ways, a certificate made for the test)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpcore
import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.errors import FetchError
from watcher.pipeline.fetch import Fetcher
from watcher.pipeline.transport import AsyncioBackend, AsyncioStream, LinearPool, http_client

Answer = Callable[[socket.socket], bool]  # serves one request; False closes the connection


class KeepAliveServer:
    """HTTP/1.1 on 127.0.0.1, many requests per connection; counts the connections."""

    def __init__(self, answer: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, path: str = "/") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            with conn:
                while _read_head(conn) and self.answer(conn):
                    pass
        except OSError:
            pass  # the client hung up

    def close(self) -> None:
        self._listener.close()


def _read_head(conn: socket.socket) -> bool:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        data += chunk
    return True


def reply(body: bytes, *, keep_alive: bool = True) -> Answer:
    def answer(conn: socket.socket) -> bool:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
        conn.sendall(head.encode() + b"\r\n" + body)
        return keep_alive

    return answer


@pytest.fixture
def serving() -> Iterator[Callable[..., KeepAliveServer]]:
    servers: list[KeepAliveServer] = []

    def start(answer: Answer, tls: ssl.SSLContext | None = None) -> KeepAliveServer:
        servers.append(KeepAliveServer(answer, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_the_fetchers_connections_run_on_asyncio_streams(
    serving: Callable[..., KeepAliveServer],
) -> None:
    server = serving(reply(b"hello"))

    async def streams() -> list[object]:
        async with Fetcher() as fetcher:
            await fetcher.fetch(server.url())
            pool = fetcher._client._transport._pool  # type: ignore[attr-defined]
            return [c._connection._network_stream for c in pool.connections]

    found = asyncio.run(streams())
    assert found and all(isinstance(stream, AsyncioStream) for stream in found)


def test_keep_alive_reuses_one_connection(serving: Callable[..., KeepAliveServer]) -> None:
    server = serving(reply(b"same"))

    async def fetch_three() -> list[bytes]:
        async with Fetcher() as fetcher:
            return [(await fetcher.fetch(server.url(f"/{n}"))).content for n in range(3)]

    assert asyncio.run(fetch_three()) == [b"same"] * 3
    assert server.connections == 1


def test_a_connection_the_server_closed_while_idle_is_replaced(
    serving: Callable[..., KeepAliveServer],
) -> None:
    """The server answers with keep-alive, then closes anyway: the next request must not
    go out on the dead connection and fail (the EOF the loop delivered says it is dead)."""
    closing = reply(b"bye", keep_alive=False)

    def answer(conn: socket.socket) -> bool:
        return closing(conn)  # no "Connection: close": the client thinks it may reuse it

    server = serving(answer)

    async def fetch_twice() -> list[bytes]:
        async with Fetcher() as fetcher:
            first = (await fetcher.fetch(server.url("/1"))).content
            await asyncio.sleep(0.2)  # the FIN arrives while the connection is idle
            return [first, (await fetcher.fetch(server.url("/2"))).content]

    assert asyncio.run(fetch_twice()) == [b"bye", b"bye"]
    assert server.connections == 2


def test_a_reader_that_falls_behind_pauses_the_socket_and_loses_nothing(
    serving: Callable[..., KeepAliveServer],
) -> None:
    """Reading pauses above the buffer's high mark (memory per connection stays bounded)
    and resumes below its low mark."""
    body = bytes(range(256)) * (12 * 1024)  # 3 MB, twelve times the high mark
    server = serving(reply(body))

    async def late_reader() -> tuple[bool, bytes]:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", server.port, 2)
        assert isinstance(stream, AsyncioStream)
        await stream.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.3)  # the server sends while nobody reads
        paused = stream._protocol.reading_paused
        received = b""
        while b"\r\n\r\n" not in received or len(received.partition(b"\r\n\r\n")[2]) < len(body):
            received += await stream.read(65536, timeout=2)
        await stream.aclose()
        return paused, received.partition(b"\r\n\r\n")[2]

    paused, received = asyncio.run(late_reader())
    assert paused
    assert received == body


def test_a_write_to_a_peer_that_never_reads_times_out() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()

    async def flood() -> None:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", listener.getsockname()[1], 2)
        try:
            for _ in range(1000):  # the kernel's buffers fill within a few MB
                await stream.write(b"x" * 1024 * 1024, timeout=0.3)
        finally:
            await stream.aclose()

    with pytest.raises(httpcore.WriteTimeout):
        asyncio.run(flood())
    listener.close()
    for conn in accepted:
        conn.close()


def test_a_refused_connection_names_the_refusal() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # closed again: nothing listens there

    async def refused() -> None:
        async with Fetcher() as fetcher:
            await fetcher.fetch(f"http://127.0.0.1:{port}/")

    with pytest.raises(FetchError, match="connection refused"):
        asyncio.run(refused())


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate for the TLS test")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    command += ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
    )
    return cert, key


def _secret_over_tls(
    serving: Callable[..., KeepAliveServer], certificate: tuple[Path, Path]
) -> KeepAliveServer:
    """A server answering "secret" over TLS with the self-signed ``certificate``."""
    cert, key = certificate
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    return serving(reply(b"secret"), tls=server_side)


def test_https_goes_through_the_tls_upgrade_and_checks_the_certificate(
    serving: Callable[..., KeepAliveServer], certificate: tuple[Path, Path]
) -> None:
    server = _secret_over_tls(serving, certificate)
    trusting = ssl.create_default_context(cafile=str(certificate[0]))

    async def fetch(verify: ssl.SSLContext | bool) -> bytes:
        async with Fetcher(client=http_client(verify=verify)) as fetcher:
            try:
                return (await fetcher.fetch(server.url())).content
            finally:
                await fetcher._client.aclose()

    assert asyncio.run(fetch(trusting)) == b"secret"
    with pytest.raises(FetchError, match="TLS error"):  # not signed by anyone we trust
        asyncio.run(fetch(True))


def test_the_tls_context_is_made_at_the_first_https_connection_and_verifies(
    serving: Callable[..., KeepAliveServer], certificate: tuple[Path, Path]
) -> None:
    secure = _secret_over_tls(serving, certificate)
    plain = serving(reply(b"plain"))

    async def visit() -> list[object]:
        async with Fetcher() as fetcher:
            pool = fetcher._client._transport._pool  # type: ignore[attr-defined]
            seen: list[object] = [pool._ssl_context]
            await fetcher.fetch(plain.url())
            seen.append(pool._ssl_context)  # plain http needs none
            with pytest.raises(FetchError, match="TLS error"):
                await fetcher.fetch(secure.url())
            context = pool._ssl_context
            seen.append((context.verify_mode, context.check_hostname))
            return seen

    assert asyncio.run(visit()) == [None, None, (ssl.CERT_REQUIRED, True)]


# ------------------------------------------------ the pool's bookkeeping, made linear


@dataclass(eq=False)
class _Connection:
    """A pooled connection as the pool's bookkeeping sees it: a few fixed answers."""

    origin: str
    closed: bool = False
    expired: bool = False
    idle: bool = False
    available: bool = False

    def is_closed(self) -> bool:
        return self.closed

    def has_expired(self) -> bool:
        return self.expired

    def is_idle(self) -> bool:
        return self.idle

    def is_available(self) -> bool:
        return self.available

    def can_handle_request(self, origin: str) -> bool:
        return origin == self.origin


@dataclass(eq=False)
class _Queued:
    origin: str
    connection: _Connection | None = None

    @property
    def request(self) -> Any:
        return SimpleNamespace(url=SimpleNamespace(origin=self.origin))

    def is_queued(self) -> bool:
        return self.connection is None

    def assign_to_connection(self, connection: _Connection) -> None:
        self.connection = connection


_ORIGINS = st.sampled_from(["a", "b", "c"])
_CONNECTIONS = st.builds(
    _Connection, _ORIGINS, st.booleans(), st.booleans(), st.booleans(), st.booleans()
)


def _pool(
    kind: type, connections: list[_Connection], requests: list[_Queued], most: int, kept: int
) -> Any:
    pool = object.__new__(kind)
    pool._connections = list(connections)
    pool._requests = list(requests)
    pool._max_connections, pool._max_keepalive_connections = most, kept
    pool.create_connection = lambda origin: _Connection(origin, available=True)
    return pool


@given(
    st.lists(_CONNECTIONS, max_size=12),
    st.lists(st.tuples(_ORIGINS, st.booleans()), max_size=6),
    st.integers(1, 14),
    st.integers(0, 12),
)
def test_the_linear_pool_decides_what_httpcores_pool_decides(
    connections: list[_Connection], asks: list[tuple[str, bool]], most: int, kept: int
) -> None:
    """Same connections dropped, closed, created and handed to the same requests."""

    def outcome(kind: type) -> tuple[Any, ...]:
        copies = [replace(c) for c in connections]
        requests = [
            _Queued(origin, None if queued else copies[0] if copies else None)
            for origin, queued in asks
        ]
        pool = _pool(kind, copies, requests, most, kept)
        closing = kind._assign_requests_to_connections(pool)

        def name(c: _Connection | None) -> Any:
            return None if c is None else (copies.index(c) if c in copies else ("new", c.origin))

        return (
            [name(c) for c in closing],
            [name(c) for c in pool._connections],
            [name(r.connection) for r in requests],
        )

    assert outcome(LinearPool) == outcome(httpcore.AsyncConnectionPool)
