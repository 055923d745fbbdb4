"""What a feed's ``allow_hosts`` lets its article links reach despite the SSRF guard.

Parsed when the config loads (a bad entry is a config error with its line); applied by the
guard in :mod:`watcher.pipeline.netguard` before every hop of an article fetch.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
# A last label like "1" or "0x7f" makes a name that inet_aton reads as an IPv4 address.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")


@dataclass(frozen=True)
class AllowList:
    """Hosts (exact names) and networks one feed's article links may reach despite the guard."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """Build from ``allow_hosts`` entries; raises ValueError on a bad one."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            value = parse_allow_entry(entry)
            if isinstance(value, str):
                hosts.add(value)
            else:
                networks.append(value)
        return cls(frozenset(hosts), tuple(networks))

    def permits_host(self, host: str) -> bool:
        return bare_host(host) in self.hosts

    def permits_address(self, address: IPAddress) -> bool:
        inner = embedded_ipv4(address)
        return any(a in net for net in self.networks for a in (address, inner) if a is not None)

    def __and__(self, other: AllowList) -> AllowList:
        """What both allow. A name one allows and the other covers by network is dropped."""
        networks = [_narrower(a, b) for a in self.networks for b in other.networks]
        return AllowList(
            self.hosts & other.hosts, tuple(dict.fromkeys(n for n in networks if n is not None))
        )


def _narrower(a: IPNetwork, b: IPNetwork) -> IPNetwork | None:
    """The smaller of two nested networks; None if they are disjoint (CIDR blocks nest or not)."""
    if a.version != b.version:
        return None
    if a.subnet_of(b):  # type: ignore[arg-type]  # same version, checked above
        return a
    if b.subnet_of(a):  # type: ignore[arg-type]
        return b
    return None


def parse_allow_entry(entry: str) -> str | IPNetwork:
    """One ``allow_hosts`` entry: a network (``10.20.0.0/16``, ``fd00::1``) or a host name.

    Host names come back lower-case, IDNA-encoded, without a trailing dot. Raises ValueError
    with a message saying how to write the entry.
    """
    text = entry.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]  # an IPv6 address written as in URLs
    if not text:
        raise ValueError("empty entry: write a host name or a network like 10.20.0.0/16")
    if "://" in text:
        raise ValueError(f"{entry!r} is a URL: write only its host name, or a network")
    if re.fullmatch(r"[^:]+:[0-9]+", text):
        raise ValueError(f"{entry!r} has a port: write the host alone (any port is allowed)")
    try:
        return ipaddress.ip_network(text)
    except ValueError:
        if "/" in text or _looks_numeric(text):
            raise ValueError(_bad_network(entry, text)) from None
    return _host_name(entry, text)


def _looks_numeric(text: str) -> bool:
    """Meant as an address (IPv6, or IPv4 in any inet_aton spelling), not as a name."""
    labels = text.lower().split(".")
    return ":" in text or all(_NUMERIC_LABEL.fullmatch(label) for label in labels)


def _bad_network(entry: str, text: str) -> str:
    try:
        fixed = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return f"bad network {entry!r}: write it like 10.20.0.0/16, 192.168.1.5 or fd00::/8"
    return f"{entry!r} has host bits set: did you mean {str(fixed)!r}?"


def _host_name(entry: str, text: str) -> str:
    import httpx  # here, not at the top: every command loads the config, few need httpx

    try:
        host = httpx.URL(f"http://{text}/").raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError):
        host = ""
    host = bare_host(host)
    labels = host.split(".")
    bad = not host or any(c in text for c in ":/@?#") or len(host) > 253
    if bad or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"bad host name {entry!r}: write a name like intranet.example.org")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        raise ValueError(f"{entry!r} reads as an IP address: write it as a.b.c.d or a network")
    return host


def bare_host(host: str) -> str:
    return host.lower().rstrip(".")


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to: mapped, 6to4 or NAT64 (else None)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        # On DNS64 networks every IPv4-only site resolves here: judge the real destination.
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
