"""DNS rebinding: a link goes to the addresses the SSRF guard approved, never to what a second
look-up of its name says; the approval is kept a minute (one look-up, not one per check) and
forgotten when a connection to it fails.

The name ``news.rebind.test`` is answered by a resolver the test controls, installed on the
event loop (both the guard and the connect ask the loop). Two servers share one port: the
story on 127.0.0.2, which the guard is told to allow, and a "metadata service" on
127.0.0.1, which it must never reach.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from watcher.errors import FetchError
from watcher.pipeline.fetch import Fetcher
from watcher.pipeline.netguard import AllowList, Refused, url_guard
from watcher.pipeline.transport import RESOLVED

NAME = "news.rebind.test"
STORY, METADATA, NOBODY = "127.0.0.2", "127.0.0.1", "127.0.0.3"


def _server(address: str, port: int, body: bytes) -> ThreadingHTTPServer:
    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((address, port), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def port() -> Iterator[int]:
    """A port served on 127.0.0.2 by the story and on 127.0.0.1 by the metadata service."""
    for _ in range(20):
        story = _server(STORY, 0, b"the story")
        number = story.server_address[1]
        try:
            metadata = _server(METADATA, number, b"SECRET metadata")
        except OSError:  # that port is taken on 127.0.0.1: try another
            story.shutdown()
            story.server_close()
            continue
        yield number
        for server in (story, metadata):
            server.shutdown()
            server.server_close()
        return
    pytest.skip("no port free on both 127.0.0.1 and 127.0.0.2")


class Resolver:
    """Answers NAME with the next of ``answers`` (the last one again once they run out)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *answers: str) -> None:
        self.answers, self.asked = answers, 0
        self._real = loop.getaddrinfo

    async def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != NAME:
            return await self._real(host, port, *args, **kwargs)
        address = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]


def fetch_all(port: int, answers: tuple[str, ...], allow: list[str], times: int = 1) -> Any:
    """Fetch the name ``times`` times (new connection each) under a guard allowing
    ``allow``; each outcome is the body or the FetchError, with the look-ups counted."""

    async def scenario() -> tuple[list[bytes | FetchError], int]:
        loop = asyncio.get_running_loop()
        resolver = Resolver(loop, *answers)
        loop.getaddrinfo = resolver  # type: ignore[method-assign]
        outcomes: list[bytes | FetchError] = []
        for _ in range(times):
            async with Fetcher(check_url=url_guard(AllowList.parse(allow))) as fetcher:
                try:
                    outcomes.append((await fetcher.fetch(f"http://{NAME}:{port}/")).content)
                except FetchError as error:
                    outcomes.append(error)
        return outcomes, resolver.asked

    return asyncio.run(scenario())


def test_a_name_that_flips_to_a_private_address_after_the_check_is_not_followed(
    port: int,
) -> None:
    outcomes, asked = fetch_all(port, (STORY, METADATA), [f"{STORY}/32"])
    assert outcomes == [b"the story"]
    assert asked == 1  # the connect did not ask again


def test_the_guard_looks_a_host_up_once_a_minute(
    port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes, asked = fetch_all(port, (STORY, METADATA), [f"{STORY}/32"], times=3)
    assert outcomes == [b"the story"] * 3 and asked == 1
    later = RESOLVED.clock() + RESOLVED.ttl + 1
    monkeypatch.setattr(RESOLVED, "clock", lambda: later)
    outcomes, asked = fetch_all(port, (STORY, METADATA), [f"{STORY}/32"])
    assert asked == 1  # looked up again, and judged again
    assert outcomes == [b"the story"]


def test_after_a_minute_the_new_answer_is_judged_again(
    port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetch_all(port, (STORY,), [f"{STORY}/32"])
    later = RESOLVED.clock() + RESOLVED.ttl + 1
    monkeypatch.setattr(RESOLVED, "clock", lambda: later)
    (outcome,), _ = fetch_all(port, (METADATA,), [f"{STORY}/32"])
    assert isinstance(outcome, Refused)
    assert "resolves to 127.0.0.1, a loopback address" in str(outcome)


def test_a_kept_answer_is_judged_by_each_guard_by_its_own_allow_list(port: int) -> None:
    fetch_all(port, (STORY,), [f"{STORY}/32"])
    (outcome,), asked = fetch_all(port, (STORY,), [])
    assert isinstance(outcome, Refused) and asked == 0  # refused on the kept addresses


def test_a_failed_connection_forgets_the_host(port: int) -> None:
    # Nothing listens on 127.0.0.3: the first fetch fails, and the second looks again.
    outcomes, asked = fetch_all(port, (NOBODY, STORY), ["127.0.0.2/31"], times=2)
    assert isinstance(outcomes[0], FetchError) and "connection refused" in str(outcomes[0])
    assert outcomes[1] == b"the story"
    assert asked == 2


def test_a_host_with_several_addresses_is_reached_at_one_that_answers(port: int) -> None:
    class Two(Resolver):
        async def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host != NAME:
                return await self._real(host, port, *args, **kwargs)
            self.asked += 1
            return [
                (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port))
                for a in (NOBODY, STORY)
            ]

    async def scenario() -> bytes:
        loop = asyncio.get_running_loop()
        loop.getaddrinfo = Two(loop)  # type: ignore[method-assign]
        guard = url_guard(AllowList.parse(["127.0.0.2/31"]))
        async with Fetcher(check_url=guard) as fetcher:
            return (await fetcher.fetch(f"http://{NAME}:{port}/")).content

    assert asyncio.run(scenario()) == b"the story"
