"""HTTP stage: one polite, bounded GET per call, with conditional requests.

A fetch never hangs and never grows without bound: a total deadline covers redirects and
body streaming (a server dripping one byte a second cannot stall a worker), and the body is
decompressed incrementally (:mod:`watcher.pipeline.encoding`), so the size cap applies to
*decoded* bytes and a gzip bomb is stopped after at most ``max_bytes`` + one chunk. A 304 is
an outcome, not an error.

Every failure is a :class:`~watcher.errors.FetchError`; no httpx exception leaves this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from http import HTTPStatus
from types import MappingProxyType
from typing import Protocol

import httpx

from watcher import __version__
from watcher.errors import FetchError
from watcher.pipeline.encoding import BodyDecoder
from watcher.pipeline.headers import (
    Validators,
    kept_headers,
    redirect_target,
    request_validators,
    retry_after,
)
from watcher.pipeline.transport import http_client
from watcher.records import RawExchange

__all__ = ["FetchLimits", "FetchResult", "Fetcher", "Redirect", "StatusError", "URLCheck"]

log = logging.getLogger(__name__)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_PHRASES = {s.value: s.phrase for s in HTTPStatus}

URLCheck = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class FetchLimits:
    """Bounds for one fetch. Times are seconds; ``deadline`` covers redirects and the body."""

    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    deadline: float = 60.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    per_host: int = 2
    user_agent: str = f"watcher/{__version__} (+news change monitor)"

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout", "deadline", "max_bytes", "per_host"):
            if not getattr(self, name) > 0:
                raise ValueError(f"FetchLimits.{name} must be > 0, got {getattr(self, name)!r}")
        if self.max_redirects < 0:
            raise ValueError(f"FetchLimits.max_redirects must be >= 0, got {self.max_redirects}")


@dataclass(frozen=True)
class Redirect:
    """One redirect followed: its status (301, 302, ...) and the URL it pointed to."""

    status: int
    url: str


@dataclass(frozen=True)
class FetchResult:
    """A successful (2xx) or not-modified (304) response, body already decoded."""

    url: str
    final_url: str
    status: int
    content: bytes
    headers: Mapping[str, str]
    etag: str | None
    last_modified: str | None
    # The exchange as it went over the wire, when asked for (``keep_raw``): for the archive.
    raw: RawExchange | None = None
    # The redirects followed to reach ``final_url``, in order (a move is a permanent one).
    redirects: tuple[Redirect, ...] = ()

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class StatusError(FetchError):
    """The server answered with a non-2xx, non-304 status.

    ``retry_after`` is the server's Retry-After in seconds for 429 and 503 (None when absent
    or unreadable), so a scheduler can back off as asked.
    """

    def __init__(
        self, url: str, reason: str, *, status: int, retry_after: float | None = None
    ) -> None:
        super().__init__(url, reason, status=status)
        self.retry_after = retry_after
        self.raw: RawExchange | None = None  # with ``keep_raw``: the response, for the archive


class Fetcher:
    """Fetches URLs with conditional GET, manual redirects, caps and per-host politeness.

    ``client`` may be injected (tests pass one built on ``httpx.MockTransport``); it is then
    not closed by :meth:`aclose`. ``check_url`` is awaited before every hop, including each
    redirect target, and may raise :class:`FetchError` to refuse it (the SSRF guard, see
    :mod:`watcher.pipeline.netguard`); :meth:`fetch` can replace it per call.
    """

    def __init__(
        self,
        limits: FetchLimits | None = None,
        client: httpx.AsyncClient | None = None,
        *,
        check_url: URLCheck | None = None,
        host_slots: HostLimiter | None = None,
    ) -> None:
        self.limits = limits or FetchLimits()
        self.check_url = check_url
        self._owns_client = client is None
        self._client = client or http_client(follow_redirects=False)
        # In-process by default; the queue's workers pass one shared through the database.
        self._hosts: HostLimiter = host_slots or HostSlots(self.limits.per_host)
        # Per request, so an injected client gets our bounds too.
        self._timeout = httpx.Timeout(self.limits.read_timeout, connect=self.limits.connect_timeout)

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        check_url: URLCheck | None = None,
        keep_raw: bool = False,
    ) -> FetchResult:
        """GET ``url``; send the validators from the last fetch to allow a 304.

        A stored validator that is not valid HTTP is not sent (see :mod:`watcher.pipeline.headers`).
        ``check_url``, if given, is used instead of the Fetcher's own for this call: one
        client (one connection pool) serves trusted feed URLs and guarded article links,
        each article with its own feed's allow list. ``keep_raw`` keeps the final request
        and response as they went over the wire (:attr:`FetchResult.raw`, and
        :attr:`StatusError.raw` for a non-2xx answer): the body then is held twice, as
        received and as decoded.
        """
        check = check_url or self.check_url
        sent = request_validators(url, etag, last_modified)
        try:
            # The clock starts when the first host slot is granted (see _hop): waiting behind
            # our own per-host limit is not the server's slowness.
            async with asyncio.timeout(None) as budget:
                return await self._follow(url, sent, budget, check, keep_raw)
        except TimeoutError:
            raise FetchError(url, f"deadline of {self.limits.deadline:g} s exceeded") from None
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise FetchError(url, _describe(exc, self.limits)) from exc

    async def _follow(
        self,
        url: str,
        sent: Validators,
        budget: asyncio.Timeout,
        check: URLCheck | None,
        keep_raw: bool,
    ) -> FetchResult:
        current = url
        followed: list[Redirect] = []
        for hops in range(self.limits.max_redirects + 1):
            result = await self._hop(url, current, sent, budget, check, keep_raw)
            if isinstance(result, FetchResult):
                return replace(result, redirects=tuple(followed)) if followed else result
            log.debug("redirect %d: %s -> %s", hops + 1, current, result.url)
            followed.append(result)
            current = result.url
        raise FetchError(url, f"too many redirects ({self.limits.max_redirects})")

    async def _hop(
        self,
        url: str,
        current: str,
        sent: Validators,
        budget: asyncio.Timeout,
        check: URLCheck | None,
        keep_raw: bool = False,
    ) -> FetchResult | Redirect:
        """One request; returns the result, or the redirect (to an absolute URL)."""
        target = _target(url, current)
        async with self._hosts.hold(target.host if target is not None else ""):
            if budget.when() is None:
                budget.reschedule(asyncio.get_running_loop().time() + self.limits.deadline)
            if check is not None:
                await check(current)
            request = self._client.build_request(
                "GET",
                current if target is None else target,
                headers=self._request_headers(sent),
                timeout=self._timeout,
            )
            started = time.monotonic()
            response = await self._client.send(request, stream=True, follow_redirects=False)
            try:
                return await self._handle(url, response, sent, started, keep_raw)
            finally:
                await response.aclose()

    async def _handle(
        self,
        url: str,
        response: httpx.Response,
        sent: Validators,
        started: float,
        keep_raw: bool = False,
    ) -> FetchResult | Redirect:
        status = response.status_code
        if status in _REDIRECTS:
            return Redirect(status, redirect_target(url, response))
        if status == 304:
            if not sent:
                # Nothing was asked to be compared: "unchanged" would be a guess, and an
                # article would never get its first version.
                raise FetchError(url, "Not Modified to a request without validators", status=304)
            log.debug("GET %s -> 304 not modified", response.url)
            # A 304 has no body by definition; reading the empty end of it lets the pool keep
            # the connection alive instead of closing a "half-read" one (the cheap path of
            # every unchanged re-check).
            await response.aread()
            return _result(url, response, b"", sent)
        if not 200 <= status < 300:
            error = _status_error(url, response)
            if keep_raw:
                received: list[bytes] = []
                with contextlib.suppress(FetchError, httpx.HTTPError):
                    await _read_body(url, response, self.limits.max_bytes, received)
                error.raw = raw_exchange(response, b"".join(received))
            raise error
        kept: list[bytes] | None = [] if keep_raw else None
        content = await _read_body(url, response, self.limits.max_bytes, kept)
        elapsed = time.monotonic() - started
        log.debug("GET %s -> %d, %d bytes in %.2f s", response.url, status, len(content), elapsed)
        result = _result(url, response, content, Validators())
        if kept is not None:
            result = replace(result, raw=raw_exchange(response, b"".join(kept)))
        return result

    def _request_headers(self, sent: Validators) -> dict[str, str]:
        # Only encodings we can decode incrementally under the size cap.
        headers = {"User-Agent": self.limits.user_agent, "Accept-Encoding": "gzip, deflate"}
        if sent.etag:
            headers["If-None-Match"] = sent.etag
        if sent.last_modified:
            headers["If-Modified-Since"] = sent.last_modified
        return headers

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class HostLimiter(Protocol):
    """What bounds the requests under way to one host (``fetch.per_host``)."""

    def hold(self, host: str) -> AbstractAsyncContextManager[None]: ...


class HostSlots:
    """At most ``per_host`` requests at once to each host, remembering only busy hosts.

    A host's semaphore exists while someone holds or waits for it and is dropped by the last
    one out, so a daemon following links to thousands of hosts does not keep a semaphore per
    host it ever saw. Exact, because asyncio runs one task at a time: nothing can acquire
    between the count reaching zero and the entry being deleted.
    """

    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        self._slots: dict[str, _Slot] = {}

    def __len__(self) -> int:
        """How many hosts have a request under way or waiting."""
        return len(self._slots)

    @asynccontextmanager
    async def hold(self, host: str) -> AsyncIterator[None]:
        slot = self._slots.get(host)
        if slot is None:
            slot = self._slots[host] = _Slot(asyncio.Semaphore(self.per_host))
        slot.users += 1  # counted before the first await: a waiter keeps the entry alive
        try:
            async with slot.semaphore:
                yield
        finally:
            slot.users -= 1
            if not slot.users:
                del self._slots[host]


@dataclass
class _Slot:
    semaphore: asyncio.Semaphore
    users: int = 0  # requests holding or waiting for the semaphore


def _target(url: str, current: str) -> httpx.URL | None:
    """``current`` parsed, once for the host it counts against and for the request; None
    where it does not parse (the request itself then fails with a proper message). A port no
    socket can use is refused here: the connection attempt would fail inside anyio's task
    group, as an ExceptionGroup that says nothing."""
    try:
        target = _parsed_url(current)
    except httpx.InvalidURL:
        return None
    if target.port is not None and not 0 < target.port < 65536:
        raise FetchError(url, f"invalid port {target.port} in {current[:200]!r}")
    return target


@functools.lru_cache(maxsize=8192)
def _parsed_url(url: str) -> httpx.URL:
    """httpx's parse of a URL (immutable), kept: the same articles are re-checked all day,
    and parsing it twice a hop was 6% of an unchanged re-check's CPU (cProfile, 91 pages)."""
    return httpx.URL(url)


def _result(url: str, response: httpx.Response, content: bytes, sent: Validators) -> FetchResult:
    headers = kept_headers(url, response.headers)
    return FetchResult(
        url=url,
        final_url=str(response.url),
        status=response.status_code,
        content=content,
        headers=MappingProxyType(headers),
        # A 304 may omit the validators; the ones sent still apply then.
        etag=headers.get("etag", sent.etag),
        last_modified=headers.get("last-modified", sent.last_modified),
    )


def _status_error(url: str, response: httpx.Response) -> StatusError:
    status = response.status_code
    reason = response.reason_phrase or _PHRASES.get(status, "unknown status")
    if str(response.url) != url:
        reason = f"{reason} (at {response.url})"
    delay = None
    if status in _RETRY_AFTER_STATUSES:
        delay = retry_after(url, response.headers)
    return StatusError(url, reason, status=status, retry_after=delay)


async def _read_body(
    url: str, response: httpx.Response, max_bytes: int, received: list[bytes] | None = None
) -> bytes:
    """The decoded body, under the cap; ``received`` gets the bytes as they came."""
    if response.is_stream_consumed:
        # httpx pre-reads in-memory bodies (MockTransport with content=bytes) and has already
        # decoded them; only the cap is left to apply. Network responses always stream.
        if len(response.content) > max_bytes:
            raise FetchError(url, f"body exceeds {max_bytes} bytes")
        return response.content
    decoder = BodyDecoder(url, response.headers.get("content-encoding", ""), max_bytes)
    declared = response.headers.get("content-length", "")
    if decoder.identity and declared.isdigit() and int(declared) > max_bytes:
        raise decoder.too_big()  # no need to download what we will refuse
    parts: list[bytes] = []
    async for chunk in response.aiter_raw():
        if received is not None:
            received.append(chunk)
        parts.append(decoder.feed(chunk))
    parts.append(decoder.finish())
    return b"".join(parts)


def raw_exchange(response: httpx.Response, body: bytes) -> RawExchange:
    """The final request and its response as they went over the wire (see RawExchange)."""
    request = response.request
    target = request.url.raw_path
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    reason = response.extensions.get("reason_phrase", response.reason_phrase.encode())
    return RawExchange(
        url=str(request.url),
        request_line=b"%s %s %s" % (request.method.encode(), target, b"HTTP/1.1"),
        request_headers=tuple(request.headers.raw),
        http_version=response.http_version,
        status=response.status_code,
        reason=reason if isinstance(reason, bytes) else str(reason).encode("latin-1"),
        response_headers=tuple(response.headers.raw),
        body=body,
        remote_ip=str(peer[0]) if isinstance(peer, tuple) and peer else None,
    )


def _describe(exc: Exception, limits: FetchLimits) -> str:
    """A short, human reason for a transport-level failure."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timed out after {limits.connect_timeout:g} s"
    if isinstance(exc, httpx.ReadTimeout):
        return f"no data for {limits.read_timeout:g} s (read timeout)"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return f"invalid URL: {exc}"
    causes = _causes(exc)
    # httpx often wraps the real cause with an empty message: take the first one that says
    # something.
    text = next((str(c) for c in causes if str(c)), type(exc).__name__)
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "connection refused"
    # TLS before the reset: a server that hangs up mid-handshake failed the handshake.
    if any(isinstance(c, ssl.SSLError | ssl.CertificateError) for c in causes):
        return f"TLS error: {text}"
    if any(isinstance(c, ConnectionResetError) for c in causes):
        return "connection reset by the server"
    if any(isinstance(c, socket.gaierror) for c in causes):
        return f"name resolution failed: {text}"
    return f"{type(exc).__name__}: {text}"


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps (httpx wraps the OS error, anyio may wrap again)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
