"""httpcore on asyncio's own locks, events and (no) shields; the client's cookie jar."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator

import anyio
import httpcore
import pytest

from support.server import LoopbackServer, Reply, Request
from watcher.pipeline import loopsync
from watcher.pipeline.fetch import Fetcher
from watcher.pipeline.transport import AsyncioBackend, SetCookieJar, http_client


def test_a_client_puts_asyncios_primitives_under_httpcore() -> None:
    from httpcore._async import connection, connection_pool, http11

    http_client()
    assert connection.AsyncLock is loopsync.LoopLock
    assert http11.AsyncLock is loopsync.LoopLock
    assert http11.AsyncShieldCancellation is loopsync.NoShield
    assert connection_pool.AsyncEvent is loopsync.LoopEvent
    assert connection_pool.AsyncShieldCancellation is loopsync.NoShield


def test_an_anyio_shield_does_not_hold_off_asyncios_cancellation() -> None:
    """Why NoShield loses nothing: the only cancellations under the fetcher are asyncio's,
    and they pass through anyio's shield."""

    async def shielded() -> str:
        with anyio.CancelScope(shield=True):
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                return "cancelled inside the shield"
        return "slept through"

    async def under_timeout() -> str:
        async with asyncio.timeout(0.05):
            return await shielded()

    assert asyncio.run(under_timeout()) == "cancelled inside the shield"


def test_an_event_wait_past_its_timeout_is_a_pool_timeout() -> None:
    async def waits() -> tuple[type[BaseException] | None, bool]:
        late = loopsync.LoopEvent()
        try:
            await late.wait(timeout=0.05)
        except BaseException as exc:  # the type is what is tested
            raised: type[BaseException] | None = type(exc)
        else:
            raised = None
        prompt = loopsync.LoopEvent()
        asyncio.get_running_loop().call_later(0.01, prompt.set)
        await prompt.wait(timeout=5)
        return raised, prompt._event.is_set()

    assert asyncio.run(waits()) == (httpcore.PoolTimeout, True)


def _each_connection(answer: Callable[[socket.socket], None]) -> socket.socket:
    """A listener on 127.0.0.1 that runs ``answer`` on each connection, in its own thread."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener


def _slow_server(delay: float) -> tuple[socket.socket, int]:
    """Answers each request on its own connection after ``delay`` seconds."""

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            time.sleep(delay)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    listener = _each_connection(answer)
    return listener, listener.getsockname()[1]


def test_a_request_queued_for_a_full_pool_times_out_and_the_pool_goes_on() -> None:
    listener, port = _slow_server(0.3)
    loopsync.install()
    url = f"http://127.0.0.1:{port}/"

    async def two_at_once() -> list[object]:
        async with httpcore.AsyncConnectionPool(
            max_connections=1, network_backend=AsyncioBackend()
        ) as pool:
            first = pool.request("GET", url)
            second = pool.request("GET", url, extensions={"timeout": {"pool": 0.05}})
            results = await asyncio.gather(first, second, return_exceptions=True)
            after = await pool.request("GET", url)  # the queue is empty again
            return [*(getattr(r, "status", type(r)) for r in results), after.status]

    try:
        assert asyncio.run(two_at_once()) == [200, httpcore.PoolTimeout, 200]
    finally:
        listener.close()


@pytest.fixture
def dripping() -> Iterator[int]:
    """Sends a head and half a body, then nothing for seconds; then the rest."""

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf.")
            time.sleep(3)
            conn.sendall(b"rest.")

    listener = _each_connection(answer)
    yield listener.getsockname()[1]
    listener.close()


def test_a_fetch_cancelled_mid_body_leaves_the_client_usable(
    dripping: int, loopback: LoopbackServer
) -> None:
    loopback.route("/page", Reply(body="whole"))

    async def cancel_then_fetch() -> tuple[bytes, int]:
        async with Fetcher() as fetcher:
            stalled = asyncio.create_task(fetcher.fetch(f"http://127.0.0.1:{dripping}/"))
            await asyncio.sleep(0.2)
            stalled.cancel()
            with pytest.raises(asyncio.CancelledError):
                await stalled
            page = await fetcher.fetch(loopback.url("/page"))
            pool = fetcher._client._transport._pool  # type: ignore[attr-defined]
            busy = sum(not c.is_idle() and not c.is_closed() for c in pool.connections)
            return page.content, busy

    assert asyncio.run(cancel_then_fetch()) == (b"whole", 0)


def test_cookies_a_page_sets_go_back_and_pages_without_any_keep_them(
    loopback: LoopbackServer,
) -> None:
    loopback.route("/plain", Reply(body="plain"))
    loopback.route("/consent", Reply(body="ok", headers={"Set-Cookie": "consent=yes; Path=/"}))

    def echo(request: Request) -> Reply:
        return Reply(body=request.headers.get("cookie", "none"))

    loopback.route("/echo", echo)

    async def visit() -> list[bytes]:
        async with Fetcher() as fetcher:
            assert isinstance(fetcher._client.cookies, SetCookieJar)
            seen = []
            for path in ("/echo", "/consent", "/plain", "/echo"):
                seen.append((await fetcher.fetch(loopback.url(path))).content)
            return seen

    assert asyncio.run(visit()) == [b"none", b"ok", b"plain", b"consent=yes"]
