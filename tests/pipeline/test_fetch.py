"""watcher.pipeline.fetch against a real HTTP server on loopback (and MockTransport where a stream
shape cannot be produced by a real server)."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from support.server import LoopbackServer, Reply, Request, conditional
from watcher.errors import FetchError
from watcher.pipeline.fetch import Fetcher, FetchLimits, FetchResult, StatusError

LAST_MODIFIED = "Mon, 03 Apr 2023 01:02:03 GMT"
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def get(url: str, limits: FetchLimits | None = None, **kwargs: Any) -> FetchResult:
    async with Fetcher(limits) as fetcher:
        return await fetcher.fetch(url, **kwargs)


def fetch_error(url: str, limits: FetchLimits | None = None) -> FetchError:
    with pytest.raises(FetchError) as info:
        run(get(url, limits))
    return info.value


# --- plain and conditional GET ---------------------------------------------------------------


def test_200_returns_body_validators_and_lowercased_headers(loopback: LoopbackServer) -> None:
    loopback.route("/a", conditional("<p>hi</p>", "text/html", last_modified=LAST_MODIFIED))
    result = run(get(loopback.url("/a")))
    assert (result.status, result.content, result.not_modified) == (200, b"<p>hi</p>", False)
    assert result.final_url == result.url == loopback.url("/a")
    assert result.etag and result.etag.startswith('"')
    assert result.last_modified == LAST_MODIFIED
    assert result.headers["content-type"] == "text/html"
    sent = loopback.requests_to("/a")[0].headers
    assert sent["User-Agent"].startswith("watcher/")
    assert sent["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in sent


def test_etag_round_trip_gives_304_then_200_when_page_changes(loopback: LoopbackServer) -> None:
    loopback.route("/a", conditional("v1", "text/plain"))

    async def scenario() -> tuple[FetchResult, FetchResult, FetchResult]:
        async with Fetcher() as fetcher:
            first = await fetcher.fetch(loopback.url("/a"))
            again = await fetcher.fetch(loopback.url("/a"), etag=first.etag)
            loopback.route("/a", conditional("v2", "text/plain"))
            changed = await fetcher.fetch(loopback.url("/a"), etag=first.etag)
            return first, again, changed

    first, again, changed = run(scenario())
    assert again.not_modified and again.content == b"" and again.etag == first.etag
    assert loopback.requests_to("/a")[1].headers["if-none-match"] == first.etag
    assert (changed.status, changed.content) == (200, b"v2")
    assert changed.etag != first.etag


def test_last_modified_round_trip(loopback: LoopbackServer) -> None:
    loopback.route("/a", conditional("v1", "text/plain", etag=False, last_modified=LAST_MODIFIED))
    first = run(get(loopback.url("/a")))
    assert first.etag is None and first.last_modified == LAST_MODIFIED
    again = run(get(loopback.url("/a"), last_modified=first.last_modified))
    assert again.not_modified and again.last_modified == LAST_MODIFIED
    assert loopback.requests_to("/a")[1].headers["if-modified-since"] == LAST_MODIFIED


def test_304_without_validators_keeps_the_callers(loopback: LoopbackServer) -> None:
    loopback.route("/a", Reply(304))
    result = run(get(loopback.url("/a"), etag='"x"', last_modified=LAST_MODIFIED))
    assert result.not_modified
    assert (result.etag, result.last_modified) == ('"x"', LAST_MODIFIED)


# --- status errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "phrase"), [(404, "Not Found"), (500, "Internal Server Error")])
def test_error_status_raises_with_status(
    loopback: LoopbackServer, status: int, phrase: str
) -> None:
    loopback.route("/a", Reply(status, "nope"))
    error = fetch_error(loopback.url("/a"))
    assert isinstance(error, StatusError)
    assert (error.status, error.reason, error.retry_after) == (status, phrase, None)
    assert str(error) == f"{loopback.url('/a')}: HTTP {status}: {phrase}"


def test_unknown_path_is_404(loopback: LoopbackServer) -> None:
    assert fetch_error(loopback.url("/nowhere")).status == 404


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [(429, "120", 120.0), (503, "Thu, 01 Jan 1970 00:00:00 GMT", 0.0), (503, "soon", None)],
)
def test_retry_after_on_429_and_503(
    loopback: LoopbackServer, status: int, header: str, expected: float | None
) -> None:
    loopback.route("/a", Reply(status, headers={"Retry-After": header}))
    error = fetch_error(loopback.url("/a"))
    assert isinstance(error, StatusError)
    assert (error.status, error.retry_after) == (status, expected)


# --- redirects -------------------------------------------------------------------------------


def test_redirect_chain_is_followed_and_every_hop_checked(loopback: LoopbackServer) -> None:
    loopback.route("/a", Reply(301, headers={"Location": "/b?x=1"}))
    loopback.route("/b", Reply(302, headers={"Location": "c"}))  # relative to /b
    loopback.route("/c", Reply(307, headers={"Location": loopback.url("/d")}))
    loopback.route("/d", Reply(200, "done"))
    checked: list[str] = []

    async def check(url: str) -> None:
        checked.append(url)

    async def scenario() -> FetchResult:
        async with Fetcher(check_url=check) as fetcher:
            return await fetcher.fetch(loopback.url("/a"))

    result = run(scenario())
    assert (result.content, result.url, result.final_url) == (
        b"done",
        loopback.url("/a"),
        loopback.url("/d"),
    )
    assert checked == [loopback.url(p) for p in ("/a", "/b?x=1", "/c", "/d")]


def test_check_url_can_refuse_a_redirect_target(loopback: LoopbackServer) -> None:
    loopback.route("/a", Reply(302, headers={"Location": "/private"}))

    async def check(url: str) -> None:
        if url.endswith("/private"):
            raise FetchError(url, "refused: private address")

    async def scenario() -> None:
        async with Fetcher(check_url=check) as fetcher:
            await fetcher.fetch(loopback.url("/a"))

    with pytest.raises(FetchError, match="refused"):
        run(scenario())
    assert loopback.requests_to("/private") == []


def test_redirect_loop_stops_after_max_redirects(loopback: LoopbackServer) -> None:
    loopback.route("/a", Reply(302, headers={"Location": "/b"}))
    loopback.route("/b", Reply(302, headers={"Location": "/a"}))
    error = fetch_error(loopback.url("/a"))
    assert error.reason == "too many redirects (5)" and error.status is None
    assert len(loopback.requests_to("/a")) + len(loopback.requests_to("/b")) == 6


def test_redirect_without_location_or_to_other_scheme(loopback: LoopbackServer) -> None:
    loopback.route("/a", Reply(302))
    loopback.route("/b", Reply(302, headers={"Location": "file:///etc/passwd"}))
    assert "without a Location" in fetch_error(loopback.url("/a")).reason
    assert "unsupported URL" in fetch_error(loopback.url("/b")).reason


# --- size cap and decoding -------------------------------------------------------------------


def test_body_over_cap_with_content_length_is_refused(loopback: LoopbackServer) -> None:
    loopback.route("/big", Reply(200, b"x" * 5000))
    error = fetch_error(loopback.url("/big"), FetchLimits(max_bytes=1000))
    assert error.reason == "body exceeds 1000 bytes"


def test_streamed_body_over_cap_is_aborted_early() -> None:
    produced = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal produced
        while True:
            produced += 1
            yield b"x" * 1024

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())

    async def scenario() -> None:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        async with client, Fetcher(FetchLimits(max_bytes=10_000), client) as fetcher:
            await fetcher.fetch("http://feeds.test/endless")

    with pytest.raises(FetchError, match="body exceeds 10000 bytes"):
        run(scenario())
    assert produced <= 11


def test_gzip_bomb_stops_at_decoded_cap(loopback: LoopbackServer) -> None:
    bomb = gzip.compress(b"\0" * (32 * 1024 * 1024), compresslevel=9)  # ~32 KB on the wire
    loopback.route("/bomb", Reply(200, bomb, {"Content-Encoding": "gzip"}))
    tracemalloc.start()
    try:
        error = fetch_error(loopback.url("/bomb"), FetchLimits(max_bytes=100_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.reason == "body exceeds 100000 bytes"
    assert peak < 4 * 1024 * 1024  # the 32 MB were never materialised


def test_in_memory_mock_bodies_are_decoded_once_and_capped() -> None:
    # httpx pre-reads (and decodes) bodies given as bytes to MockTransport.
    body = b"<p>article</p>" * 100
    packed = gzip.compress(body)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=packed, headers={"Content-Encoding": "gzip"})

    async def scenario(limit: int) -> FetchResult:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        async with client, Fetcher(FetchLimits(max_bytes=limit), client) as fetcher:
            return await fetcher.fetch("http://feeds.test/a")

    assert run(scenario(len(body))).content == body
    with pytest.raises(FetchError, match="body exceeds 100 bytes"):
        run(scenario(100))


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as the RFC says
        ("deflate", lambda d: zlib.compress(d)[2:-4]),  # raw deflate, as some servers send
        ("gzip", lambda d: gzip.compress(d[:100]) + gzip.compress(d[100:])),  # two members
        ("identity", lambda d: d),
    ],
    ids=["gzip", "x-gzip", "deflate-zlib", "deflate-raw", "gzip-multimember", "identity"],
)
def test_content_encodings_are_decoded(loopback: LoopbackServer, coding: str, encode: Any) -> None:
    body = ("<p>Cease-fire holds, officials say.</p>\n" * 200).encode()
    loopback.route("/a", Reply(200, encode(body), {"Content-Encoding": coding}))
    assert run(get(loopback.url("/a"), FetchLimits(max_bytes=len(body)))).content == body


@pytest.mark.parametrize(
    ("coding", "body", "reason"),
    [
        ("gzip", b"this is not gzip at all", "malformed gzip body"),
        ("deflate", b"\xff\xff\xff\xff", "malformed deflate body"),
        ("gzip", gzip.compress(b"a" * 10_000)[:-20], "truncated gzip body"),
        ("br", b"whatever", "unsupported Content-Encoding 'br'"),
        ("gzip, gzip", b"whatever", "unsupported Content-Encoding"),
    ],
)
def test_bad_content_encoding_is_a_fetch_error(
    loopback: LoopbackServer, coding: str, body: bytes, reason: str
) -> None:
    loopback.route("/a", Reply(200, body, {"Content-Encoding": coding}))
    assert fetch_error(loopback.url("/a")).reason.startswith(reason)


# --- time limits and transport failures ------------------------------------------------------


@pytest.fixture
def drip_url() -> Iterator[str]:
    """A raw socket server that sends headers, then one body byte every 50 ms, forever."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)

    def drip(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while not stop.wait(0.05):
                try:
                    conn.sendall(b"x")
                except OSError:
                    return

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/article"
    stop.set()
    thread.join()
    listener.close()


def test_slow_drip_hits_the_total_deadline(drip_url: str) -> None:
    limits = FetchLimits(deadline=0.5, read_timeout=5)
    started = time.monotonic()
    error = fetch_error(drip_url, limits)
    assert error.reason == "deadline of 0.5 s exceeded"
    assert time.monotonic() - started < 1.5


def test_read_timeout_when_the_server_goes_silent(loopback: LoopbackServer) -> None:
    def silent(request: Request) -> Reply:
        time.sleep(1)
        return Reply(200, "late")

    loopback.route("/slow", silent)
    error = fetch_error(loopback.url("/slow"), FetchLimits(read_timeout=0.2))
    assert "read timeout" in error.reason


def test_connection_refused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed on exit: nothing listens there any more
    assert fetch_error(f"http://127.0.0.1:{port}/").reason == "connection refused"


@pytest.mark.parametrize("url", ["ftp://example.org/feed", "http://[::1/feed", "not a url"])
def test_unusable_urls_are_fetch_errors(url: str) -> None:
    assert fetch_error(url).url == url


# --- politeness ------------------------------------------------------------------------------


def test_per_host_limit_bounds_concurrency(loopback: LoopbackServer) -> None:
    lock = threading.Lock()
    active = peak = 0

    def slow(request: Request) -> Reply:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.15)
        with lock:
            active -= 1
        return Reply(200, "ok")

    loopback.route("/a", slow)

    async def scenario() -> list[FetchResult]:
        # A deadline shorter than the whole queue: waiting for a slot must not count.
        async with Fetcher(FetchLimits(per_host=2, deadline=0.5)) as fetcher:
            urls = [loopback.url(f"/a?n={n}") for n in range(8)]
            return await asyncio.gather(*(fetcher.fetch(u) for u in urls))

    assert all(r.status == 200 for r in run(scenario()))
    assert peak == 2


def test_different_hosts_are_fetched_concurrently() -> None:
    active: dict[str, int] = {}
    peaks: dict[str, int] = {}
    overall = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal overall
        host = request.url.host
        active[host] = active.get(host, 0) + 1
        peaks[host] = max(peaks.get(host, 0), active[host])
        overall = max(overall, sum(active.values()))
        await asyncio.sleep(0.05)
        active[host] -= 1
        return httpx.Response(200, content=b"ok")

    async def scenario() -> None:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        async with client, Fetcher(FetchLimits(per_host=1), client) as fetcher:
            urls = [f"http://{h}.test/{n}" for h in ("a", "b", "c") for n in range(3)]
            await asyncio.gather(*(fetcher.fetch(u) for u in urls))

    run(scenario())
    assert peaks == {"a.test": 1, "b.test": 1, "c.test": 1}
    assert overall == 3


def test_injected_client_is_left_open() -> None:
    async def scenario() -> bool:
        client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(204)))
        async with Fetcher(client=client) as fetcher:
            result = await fetcher.fetch("http://feeds.test/")
        assert result.status == 204 and result.content == b""
        still_open = not client.is_closed
        await client.aclose()
        return still_open

    assert run(scenario())


def test_limits_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="deadline must be > 0"):
        FetchLimits(deadline=0)


def test_host_slots_are_forgotten_once_idle_and_stay_exact_while_busy() -> None:
    peaks: dict[str, int] = {}
    active: dict[str, int] = {}
    busy_hosts: list[int] = []
    fetcher: Fetcher

    async def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        active[host] = active.get(host, 0) + 1
        peaks[host] = max(peaks.get(host, 0), active[host])
        busy_hosts.append(len(fetcher._hosts))
        await asyncio.sleep(0.01)
        active[host] -= 1
        return httpx.Response(200, content=b"ok")

    async def scenario() -> int:
        nonlocal fetcher
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        async with client, Fetcher(FetchLimits(per_host=2), client) as fetcher:
            urls = [f"http://h{h}.test/{n}" for h in range(200) for n in range(5)]
            await asyncio.gather(*(fetcher.fetch(u) for u in urls))
            # A waiter cancelled in the queue must not leave its host behind either.
            waiting = [asyncio.create_task(fetcher.fetch("http://slow.test/")) for _ in range(3)]
            await asyncio.sleep(0)
            for task in waiting:
                task.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
            return len(fetcher._hosts)

    assert run(scenario()) == 0
    assert set(peaks.values()) == {2}  # never more than per_host at once, for every host
    assert max(busy_hosts) == 200  # every host was busy at once: the map held only those
