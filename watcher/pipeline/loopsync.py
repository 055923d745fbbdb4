"""httpcore's locks, events and cancellation shields on asyncio's own primitives.

httpcore picks its synchronisation at run time: under asyncio it asks sniffio which library
is running (on every shield and on every lock's first use) and then goes through anyio,
whose ``Lock.acquire`` yields to the event loop even when the lock is free and whose shields
keep a cancel scope per use. Per request that is several lock round trips, two shields and
an extra turn of the loop each time (2.4% of a new article's check in py-spy samples of
cpu_bench's waves; with the cookie jar of transport.py, a 304 re-check went 0.85 -> 0.56 ms).

watcher's fetcher runs on asyncio alone (its sockets are asyncio transports, see
:mod:`watcher.pipeline.transport`), so the same interfaces are provided here by asyncio's
``Lock`` and ``Event``. The shield does nothing, which is what anyio's does here too:
anyio shields only from anyio's own cancel scopes, and nothing under the fetcher opens one;
asyncio's cancellations (``asyncio.timeout``, a task cancelled at shutdown) pass through an
anyio shield as well (a test holds both facts).

:func:`install` rebinds the names in the httpcore modules of an HTTP/1.1 connection and its
pool, once per process. A test checks that those names exist and are these classes after a
client is made, so an httpcore that renames or moves them fails it instead of silently going
back to anyio.
"""

from __future__ import annotations

import asyncio
from types import ModuleType, TracebackType
from typing import Self

import httpcore
from httpcore._async import connection, connection_pool, http11

__all__ = ["LoopEvent", "LoopLock", "NoShield", "install"]


class LoopLock:
    """httpcore's ``AsyncLock`` interface (``async with``) on :class:`asyncio.Lock`."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        await self._lock.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self._lock.release()


class LoopEvent:
    """httpcore's ``AsyncEvent`` on :class:`asyncio.Event`: a wait past its timeout raises
    httpcore's ``PoolTimeout`` (httpx's ``PoolTimeout``), as httpcore's own does."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout: float | None = None) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError as exc:
            raise httpcore.PoolTimeout(str(exc) or "no connection came free in time") from exc


class NoShield:
    """httpcore's ``AsyncShieldCancellation``: on asyncio alone there is nothing it could
    shield from (see the module's text)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        return None


# Which httpcore module uses which of its primitives (HTTP/1.1 and the pool: the fetcher
# speaks nothing else).
_USED_BY: dict[ModuleType, dict[str, type]] = {
    connection: {"AsyncLock": LoopLock},
    http11: {"AsyncLock": LoopLock, "AsyncShieldCancellation": NoShield},
    connection_pool: {"AsyncEvent": LoopEvent, "AsyncShieldCancellation": NoShield},
}


def install() -> None:
    """Rebind httpcore's primitives to these (idempotent). A name that is missing means
    httpcore changed: refused loudly rather than half installed."""
    for module, names in _USED_BY.items():
        missing = [name for name in names if not hasattr(module, name)]
        if missing:
            raise RuntimeError(f"{module.__name__} has no {', '.join(missing)}: httpcore changed")
    for module, names in _USED_BY.items():
        for name, replacement in names.items():
            setattr(module, name, replacement)
