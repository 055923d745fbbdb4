"""The network layer under httpx: sockets as plain asyncio transports.

httpx's own stack (httpcore over anyio) costs about 1.1 ms of CPU per request on a
two-core machine, more than the rest of an unchanged re-check together. Two things make
most of it, and both go away on plain asyncio:

- anyio wraps every read, write and close in its own task-group and cancel-scope
  bookkeeping, on top of the asyncio transport that does the work;
- before handing out a pooled connection, httpcore asks every idle connection in the pool
  whether the server has closed it, and anyio answers each question with a ``poll()``
  system call (after building a dict of every attribute the socket has). The event loop
  already knows: it delivers the server's bytes or its EOF to the protocol as soon as they
  arrive, so here "readable" is a look at a buffer, with no system call.

The streams speak httpcore's network-backend interface and raise httpcore's exceptions, so
httpx maps them to its own exactly as before (``ConnectTimeout``, ``ReadError`` ...), with
the OS error kept as the cause (:func:`watcher.pipeline.fetch._describe` reads it).

A host the SSRF guard resolved and approved (:data:`RESOLVED`) is connected to at exactly
those addresses, never by looking its name up again: see :class:`Resolutions`.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, zip_longest
from typing import Any, TypeVar

import httpcore
import httpx

from watcher.pipeline import loopsync

__all__ = [
    "RESOLVED",
    "AsyncioBackend",
    "LinearPool",
    "Resolutions",
    "SetCookieJar",
    "http_client",
]

T = TypeVar("T")

# Reading pauses once this much is buffered and unread (a body streams faster than it is
# decoded), and resumes below the low mark: memory per connection stays bounded.
_READ_HIGH = 256 * 1024
_READ_LOW = 64 * 1024
# RFC 8305's recommended delay between connection attempts to a name's addresses (anyio's).
_HAPPY_EYEBALLS_DELAY = 0.25
# How long the guard's look-up of a host serves its checks and connections. No resolver
# call says how long an answer is good for; a minute is what browsers keep one.
RESOLUTION_TTL = 60.0
# Past this many hosts, adding one first drops the expired ones.
_RESOLUTIONS_PRUNE_AT = 4096


@dataclass
class Resolutions:
    """The addresses the SSRF guard resolved a host to and approved, kept ``ttl`` seconds.

    While kept, the guard's next checks of the host judge these addresses instead of
    looking the name up again (one look-up a minute, not one per re-check), and a new
    connection to the host goes to exactly these addresses. Without that, a name whose DNS
    answer flips from a public address at the check to a private one at the connect (DNS
    rebinding) would get through. A connection that fails forgets the host, so the next
    check looks it up afresh.
    """

    ttl: float = RESOLUTION_TTL
    clock: Callable[[], float] = time.monotonic
    _kept: dict[tuple[str, int], tuple[float, tuple[str, ...]]] = field(default_factory=dict)

    def get(self, host: str, port: int) -> tuple[str, ...] | None:
        key = (host.lower(), port)
        entry = self._kept.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            del self._kept[key]
            return None
        return entry[1]

    def keep(self, host: str, port: int, addresses: Sequence[str]) -> None:
        now = self.clock()
        if len(self._kept) >= _RESOLUTIONS_PRUNE_AT:
            self._kept = {k: v for k, v in self._kept.items() if v[0] > now}
        self._kept[(host.lower(), port)] = (now + self.ttl, tuple(addresses))

    def forget(self, host: str, port: int) -> None:
        self._kept.pop((host.lower(), port), None)

    def clear(self) -> None:
        self._kept.clear()


# One per process: what the guard approved holds for every client's connections.
RESOLVED = Resolutions()


def http_client(*, verify: ssl.SSLContext | bool = True, **options: Any) -> httpx.AsyncClient:
    """An httpx client whose connections run on :class:`AsyncioBackend`; ``verify`` is the
    transport's (certificates), ``options`` the client's.

    httpx builds its connection pool itself and offers no argument for the network backend,
    so the pool's backend is set before the pool has opened any connection; a test checks
    that the connections really are ours, so an httpx that renames the attribute fails it.
    The client's cookie jar is a :class:`SetCookieJar`, and httpcore's locks are asyncio's
    (:mod:`watcher.pipeline.loopsync`).
    """
    loopsync.install()
    given = isinstance(verify, ssl.SSLContext)
    # Without a context of the caller's, none is made until the first https connection:
    # reading the CA bundle costs 20-40 ms of CPU, more than a whole article's check, and a
    # `watcher check` of http pages would pay it for nothing.
    transport = httpx.AsyncHTTPTransport(verify=verify if given else False)
    pool = transport._pool
    pool._network_backend = AsyncioBackend()
    pool.__class__ = LinearPool  # same state, two methods replaced
    assert isinstance(pool, LinearPool)
    if not given:
        # Until then the pool holds no context at all, so anything that reached httpcore's
        # connect without LinearPool's would get httpcore's own verifying default, never
        # the unverified placeholder the transport was built with.
        pool._ssl_context = None
        pool.tls_context = functools.partial(httpx.create_ssl_context, verify=verify)
    client = httpx.AsyncClient(transport=transport, **options)
    client._cookies = SetCookieJar(client.cookies)  # the property's setter would rewrap it
    return client


class SetCookieJar(httpx.Cookies):
    """The client's cookies, read off a response only when it sets some: httpx's own
    wraps every response and its request for the standard library's jar, which then finds
    no ``Set-Cookie`` on most pages (a tenth of an unchanged re-check's CPU)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


class LinearPool(httpcore.AsyncConnectionPool):
    """httpcore's pool, with the bookkeeping it runs on every request start and end made
    linear in the connections it holds. httpcore's own counts every connection once per idle
    one (quadratic: 250 ``is_idle`` calls a request on one host, an eighth of an unchanged
    re-check's CPU under cProfile, and worse with the twenty idle connections a daemon watching
    many sites keeps). Same decisions in the same order: drop the closed and the expired,
    close idle ones while the pool holds more than ``max_keepalive_connections``, then give
    each queued request the first connection that can take it, a new one while under
    ``max_connections``, or a new one in place of the first idle one."""

    # Makes the TLS context on the first https connection (see http_client); None when the
    # pool was given one.
    tls_context: Callable[[], ssl.SSLContext] | None = None

    def create_connection(self, origin: httpcore.Origin) -> httpcore.AsyncConnectionInterface:
        if origin.scheme == b"https" and self._ssl_context is None and self.tls_context:
            self._ssl_context = self.tls_context()
        return super().create_connection(origin)

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        closing: list[httpcore.AsyncConnectionInterface] = []
        held = len(self._connections)
        for connection in list(self._connections):
            if connection.is_closed():
                self._connections.remove(connection)
            elif connection.has_expired() or (
                connection.is_idle() and held > self._max_keepalive_connections
            ):
                self._connections.remove(connection)
                closing.append(connection)
            else:
                continue
            held -= 1
        for pool_request in self._requests:
            if pool_request.is_queued():
                closing.extend(self._assign(pool_request))
        return closing

    def _assign(self, pool_request: Any) -> list[httpcore.AsyncConnectionInterface]:
        """Give one queued request a connection if one can be had; the connection it
        displaced, if any, to close."""
        origin = pool_request.request.url.origin
        for connection in self._connections:
            if connection.can_handle_request(origin) and connection.is_available():
                pool_request.assign_to_connection(connection)
                return []
        displaced: list[httpcore.AsyncConnectionInterface] = []
        if len(self._connections) >= self._max_connections:
            idle = next((c for c in self._connections if c.is_idle()), None)
            if idle is None:
                return []  # it waits for a connection to come free
            self._connections.remove(idle)
            displaced.append(idle)
        connection = self.create_connection(origin)
        self._connections.append(connection)
        pool_request.assign_to_connection(connection)
        return displaced


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP (and Unix) connections as asyncio transports."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        local = (local_address, 0) if local_address else None
        approved = RESOLVED.get(host, port)
        if approved is None:
            connecting: Awaitable[_Connected] = asyncio.get_running_loop().create_connection(
                _Protocol, host, port, local_addr=local, happy_eyeballs_delay=_HAPPY_EYEBALLS_DELAY
            )
        else:
            connecting = _connect_first(approved, port, local)
        try:
            connected = await _connect_step(connecting, timeout)
        except (httpcore.ConnectError, httpcore.ConnectTimeout):
            if approved is not None:
                RESOLVED.forget(host, port)
            raise
        return _stream(connected, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        connecting = asyncio.get_running_loop().create_unix_connection(_Protocol, path)
        return _stream(await _connect_step(connecting, timeout), socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


_Connected = tuple[asyncio.BaseTransport, "_Protocol"]


async def _connect_first(
    addresses: Sequence[str], port: int, local: tuple[str, int] | None
) -> _Connected:
    """A connection to the first of ``addresses`` to answer, as ``create_connection`` does
    for a name (RFC 8305): the families interleaved, a new attempt started each delay while
    earlier ones are pending, the losers closed."""
    loop = asyncio.get_running_loop()
    queue = _interleaved(addresses)
    pending: set[asyncio.Future[_Connected]] = set()
    errors: list[BaseException] = []
    try:
        while queue or pending:
            if queue:
                attempt = loop.create_connection(_Protocol, queue.pop(0), port, local_addr=local)
                pending.add(asyncio.ensure_future(attempt))
            delay = _HAPPY_EYEBALLS_DELAY if queue else None
            done, pending = await asyncio.wait(
                pending, timeout=delay, return_when=asyncio.FIRST_COMPLETED
            )
            won = [a for a in done if a.exception() is None]
            errors += [error for a in done if (error := a.exception()) is not None]
            if won:
                _close_all(won[1:])
                return won[0].result()
    finally:
        _close_all(pending)
    raise errors[0] if errors else OSError("no address to connect to")


def _interleaved(addresses: Sequence[str]) -> list[str]:
    """IPv6 and IPv4 addresses alternating, the family of the first one first."""
    v6 = [a for a in addresses if ":" in a]
    v4 = [a for a in addresses if ":" not in a]
    first, second = (v6, v4) if addresses and ":" in addresses[0] else (v4, v6)
    return [a for a in chain.from_iterable(zip_longest(first, second)) if a is not None]


def _close_all(attempts: Iterable[asyncio.Future[_Connected]]) -> None:
    for attempt in attempts:
        if not attempt.done():
            attempt.cancel()
        elif not attempt.cancelled() and attempt.exception() is None:
            attempt.result()[0].close()


def _stream(connected: _Connected, options: Iterable[Any] | None) -> AsyncioStream:
    transport, protocol = connected
    assert isinstance(transport, asyncio.Transport)
    stream = AsyncioStream(transport, protocol)
    stream.set_options(options or ())
    return stream


async def _connect_step(step: Awaitable[T], timeout: float | None, *, tls: bool = False) -> T:
    """Await a step of opening a connection (connect, TLS handshake) under ``timeout``, its
    failures as httpcore's exceptions with the OS error kept as the cause.

    With ``tls``, any failure of the handshake is a TLS error, whatever the OS said: a
    server that hangs up mid-handshake is a TLS problem to the reader, not a reset.
    """
    try:
        async with asyncio.timeout(timeout):
            return await step
    except TimeoutError as exc:
        raise httpcore.ConnectTimeout(f"timed out after {timeout} s") from exc
    except ssl.SSLError as exc:
        raise httpcore.ConnectError(_reason(exc)) from exc
    except OSError as exc:
        if not tls:
            raise httpcore.ConnectError(_reason(exc)) from exc
        reason = f"handshake failed, connection lost ({_reason(exc)})"
        # httpcore's pool re-raises with ``from None``: only the context survives, so the
        # SSLError has to be the exception being handled when ours is raised.
        try:
            raise ssl.SSLError(reason) from exc
        except ssl.SSLError as tls_error:
            raise httpcore.ConnectError(reason) from tls_error


class _Protocol(asyncio.Protocol):
    """What the event loop delivers for one connection: bytes, EOF, loss, back-pressure."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.transport: asyncio.Transport | None = None
        self._reader: asyncio.Future[None] | None = None
        self._writer: asyncio.Future[None] | None = None
        self.reading_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _READ_HIGH and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # the transport closes itself: HTTP/1.1 never half-closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake_reader()
        self._wake_writer()

    def pause_writing(self) -> None:
        self._writer = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake_writer()

    async def wait_readable(self) -> None:
        self._reader = asyncio.get_running_loop().create_future()
        try:
            await self._reader
        finally:
            self._reader = None

    @property
    def writing_paused(self) -> bool:
        return self._writer is not None

    async def wait_writable(self) -> None:
        if self._writer is not None:
            await asyncio.shield(self._writer)

    def _wake_reader(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    def _wake_writer(self) -> None:
        waiter, self._writer = self._writer, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection, read and written the way httpcore expects of a network stream."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    def set_options(self, options: Iterable[Any]) -> None:
        sock = self._transport.get_extra_info("socket")
        for option in options:
            sock.setsockopt(*option)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer and not protocol.eof:
            try:
                async with asyncio.timeout(timeout):
                    await protocol.wait_readable()
            except TimeoutError:
                raise httpcore.ReadTimeout(f"no data for {timeout} s") from None
        if protocol.buffer:
            return self._take(max_bytes)
        if protocol.error is not None:
            raise httpcore.ReadError(_reason(protocol.error)) from protocol.error
        return b""  # the server closed the connection

    def _take(self, max_bytes: int) -> bytes:
        buffer = self._protocol.buffer
        chunk = bytes(buffer[:max_bytes])
        del buffer[:max_bytes]
        if self._protocol.reading_paused and len(buffer) < _READ_LOW:
            self._protocol.reading_paused = False
            self._transport.resume_reading()
        return chunk

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if protocol.error is not None or self._transport.is_closing():
            error = protocol.error or ConnectionResetError("connection closed")
            raise httpcore.WriteError(_reason(error)) from error
        self._transport.write(buffer)
        if not protocol.writing_paused:  # the common case: the kernel took it all
            return
        try:
            async with asyncio.timeout(timeout):
                await protocol.wait_writable()
        except TimeoutError:
            raise httpcore.WriteTimeout(f"could not send for {timeout} s") from None

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        upgrading = asyncio.get_running_loop().start_tls(
            self._transport, self._protocol, ssl_context, server_hostname=server_hostname
        )
        transport = await _connect_step(upgrading, timeout, tls=True)
        if transport is None:  # the connection was lost during the handshake
            raise httpcore.ConnectError("connection lost during the TLS handshake")
        assert isinstance(transport, asyncio.Transport)
        self._protocol.transport = transport
        return AsyncioStream(transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # httpcore asks of an idle connection: has the server sent anything (its close,
            # usually) since the last response? The loop has delivered it if so.
            return bool(self._protocol.buffer) or self._protocol.eof
        key = _EXTRA_INFO.get(info)
        return None if key is None else self._transport.get_extra_info(key)


# httpcore's names for what a stream can tell, and asyncio's for the same.
_EXTRA_INFO = {
    "ssl_object": "ssl_object",
    "client_addr": "sockname",
    "server_addr": "peername",
    "socket": "socket",
}


def _reason(error: BaseException) -> str:
    return str(error) or type(error).__name__
