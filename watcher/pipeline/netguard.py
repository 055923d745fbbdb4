"""The SSRF guard: article links may only reach public addresses over http(s).

Article links come from third-party feeds, so a feed could make watcher fetch
``http://169.254.169.254/latest/meta-data/`` or ``http://127.0.0.1:6379/``. Before every hop
of an article fetch (redirects included) :func:`check_url` resolves the host with the event
loop's ``getaddrinfo`` and refuses the URL unless *every* address is public: loopback,
private (RFC 1918, ULA), link-local, multicast, unspecified, reserved, shared (CGNAT) and other
special-purpose addresses are refused, and so is any scheme but http and https. Resolving
first normalises every spelling of an address (``2130706433``, ``0x7f.1``, ``127.1``), and
IPv4 addresses carried inside IPv6 (``::ffff:127.0.0.1``, 6to4, NAT64) are judged by the
IPv4 address they lead to.

An :class:`AllowList` (a feed's ``allow_hosts``) lets links reach named hosts (exact names,
whatever they resolve to) or networks; ``allow_private_networks`` turns the guard off. Feed
URLs themselves are configured by the user and are not guarded.

DNS rebinding (a name whose answer flips from a public address at the check to a private
one at the connect) is closed: the addresses approved are kept a minute in
:data:`watcher.pipeline.transport.RESOLVED`, and connections to the host go to exactly those
addresses, never through a second look-up. The same minute spares a look-up per re-check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Sequence

import httpx

from watcher.config.allowlist import (
    AllowList,
    IPAddress,
    IPNetwork,
    bare_host,
    embedded_ipv4,
    parse_allow_entry,
)
from watcher.errors import FetchError
from watcher.pipeline.fetch import URLCheck
from watcher.pipeline.transport import RESOLVED

__all__ = [
    "HINT",
    "AllowList",
    "IPAddress",
    "IPNetwork",
    "Refused",
    "address_problem",
    "check_url",
    "parse_allow_entry",
    "refusal",
    "resolve",
    "url_guard",
]

HINT = "set allow_private_networks or the feed's allow_hosts to allow it"

_SCHEMES = frozenset({"http", "https"})
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # RFC 6598, carrier-grade NAT
_PRIVATE: tuple[IPNetwork, ...] = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
    ipaddress.IPv6Network("fc00::/7"),
)


class Refused(FetchError):
    """The guard refused a URL; the reason starts with ``refused:`` and says how to allow it."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__(url, f"refused: {why}")


# ------------------------------------------------------------------------------ policy

# Checked in order, so an address gets its most telling name.
_KINDS: tuple[tuple[Callable[[IPAddress], bool], str], ...] = (
    (lambda a: a.is_unspecified, "the unspecified address"),
    (lambda a: a.is_loopback, "a loopback address"),
    (lambda a: a.is_link_local, "a link-local address"),
    (lambda a: a.is_multicast, "a multicast address"),
    (lambda a: a in _SHARED, "a shared (carrier-grade NAT) address"),
    (lambda a: any(a in net for net in _PRIVATE), "a private address"),
    (lambda a: isinstance(a, ipaddress.IPv6Address) and a.is_site_local, "a site-local address"),
    (lambda a: a.is_reserved, "a reserved address"),
    (lambda a: not a.is_global, "a special-purpose address"),
)


def address_problem(address: IPAddress) -> str | None:
    """Why an article link must not reach ``address`` ("a loopback address"); None if public."""
    inner = embedded_ipv4(address)
    if inner is not None:
        problem = address_problem(inner)
        return None if problem is None else f"{problem} ({inner} inside IPv6)"
    return next((what for test, what in _KINDS if test(address)), None)


def refusal(host: str, addresses: Sequence[IPAddress], allow: AllowList) -> str | None:
    """Why a link to ``host``, resolved to ``addresses``, is refused; None if it is allowed.

    Every address must be public or allowed: a client may connect to any one of them.
    """
    if allow.permits_host(host):
        return None
    if not addresses:
        return f"{host} resolves to no address"
    for address in addresses:
        problem = address_problem(address)
        if problem is None or allow.permits_address(address):
            continue
        if bare_host(host) == str(address):
            return f"{host} is {problem} ({HINT})"
        return f"{host} resolves to {address}, {problem} ({HINT})"
    return None


# ------------------------------------------------------------------------------- checks


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, via the loop's resolver (off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found = (info[4][0] for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6))
    return list(dict.fromkeys(ipaddress.ip_address(a) for a in found if isinstance(a, str)))


async def check_url(url: str, allow: AllowList | None = None) -> None:
    """Raise :class:`Refused` unless ``url`` is http(s) and may be fetched under ``allow``.

    Names in the allow list are not resolved at all. A name that cannot be resolved is a
    plain :class:`FetchError` (the fetch would fail the same way).
    """
    allow = allow or AllowList()
    try:
        parsed = httpx.URL(url)  # the parser the fetch itself uses: no parser differential
        host = parsed.raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise FetchError(url, f"invalid URL: {exc}") from None
    if parsed.scheme not in _SCHEMES:
        raise Refused(url, f"{parsed.scheme}: links are never fetched, only http and https")
    if not host:
        raise Refused(url, "the URL has no host")
    if allow.permits_host(host):
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    kept = RESOLVED.get(host, port)
    addresses = [ipaddress.ip_address(a) for a in kept] if kept else await _resolve(url, host, port)
    # Judged every time, kept or not: another feed's guard may allow less.
    reason = refusal(host, addresses, allow)
    if reason is not None:
        raise Refused(url, reason)
    if kept is None:
        RESOLVED.keep(host, port, [str(address) for address in addresses])


async def _resolve(url: str, host: str, port: int) -> list[IPAddress]:
    try:
        return await resolve(host, port)
    except (OSError, UnicodeError, ValueError) as exc:
        raise FetchError(url, f"name resolution failed: {exc}") from None


def url_guard(allow: AllowList | None = None) -> URLCheck:
    """A ``check_url`` hook for :class:`~watcher.pipeline.fetch.Fetcher` applying ``allow``."""

    async def check(url: str) -> None:
        await check_url(url, allow)

    return check
