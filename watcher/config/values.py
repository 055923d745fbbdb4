"""Config values that accept friendly input and say how to fix bad input: durations
(``15m``), sizes (``10MB``), rate limits (``20/h``), listen addresses (``127.0.0.1:9464``),
apprise URLs (checked by apprise, never echoed) — and the base of every config model.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> timedelta:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"7d"``, ``"1h30m"`` → timedelta (bare numbers refused)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"bad duration {value!r}: write it with a unit, like 30s, 15m, 2h or 7d")
    text = value.strip().replace(" ", "")
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts).lower() != text.lower():
        raise ValueError(f"bad duration {value!r}: write it like 30s, 15m, 2h, 7d or 1h30m")
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in parts))


def _positive_duration(value: object) -> timedelta:
    duration = parse_duration(value)
    if duration <= timedelta(0):
        raise ValueError(f"duration {value!r} must be more than zero")
    return duration


Duration = Annotated[timedelta, BeforeValidator(_positive_duration)]

_BYTE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2}


def _parse_size(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    unit = match.group(2).lower() if match else "?"
    if not match or unit not in _BYTE_UNITS:
        raise ValueError(f"bad size {value!r}: write it like 10MB, 512KiB or 1000000")
    return int(float(match.group(1)) * _BYTE_UNITS[unit])


ByteSize = Annotated[int, BeforeValidator(_parse_size)]


class Model(BaseModel):
    """Every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d*\s*[smhdw])\s*", re.IGNORECASE)


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` messages per ``period``: written ``20/h``, ``100/d`` or ``5/10m``."""

    count: int
    period: timedelta

    @classmethod
    def parse(cls, value: object) -> RateLimit:
        if isinstance(value, RateLimit):
            return value
        match = _RATE.fullmatch(str(value)) if isinstance(value, str) else None
        if match is None or int(match.group(1)) < 1:
            raise ValueError(
                f"bad rate limit {value!r}: write it like 20/h, 100/d or 5/10m (messages/period)"
            )
        unit = match.group(2).replace(" ", "")
        period = parse_duration(unit if unit[0].isdigit() else "1" + unit)
        if period > timedelta(days=31):
            raise ValueError(f"rate limit {value!r}: the period can be at most 31 days")
        return cls(int(match.group(1)), period)

    def __str__(self) -> str:
        return f"{self.count}/{self.period}"


def notifier_url(url: str) -> str:
    """A notifier URL needs at least a scheme (``mailtos://``, ``json://``, ``console://``).

    Whether apprise can use it is asked where notifiers are built (start-up, ``watcher
    validate``, see :mod:`watcher.delivery.notifiers`): importing apprise costs
    ~0.3 s, which commands that only read the database must not pay.
    """
    scheme, sep, _ = url.strip().partition("://")
    if not sep or not scheme or not scheme.replace("+", "").replace("-", "").isalnum():
        raise ValueError("a notifier URL starts with its service, like mailtos:// or json://")
    return url


_SECRET_PARAMS = ("pass", "token", "key", "secret", "auth", "sig")


def url_secrets(url: str) -> set[str]:
    """The parts of a URL that are credentials: the password, and query values whose name
    says they are (``token=``, ``apikey=``, ``secret=``, ...)."""
    try:
        parts = urlsplit(url)
        found = {parts.password} if parts.password else set()
    except ValueError:
        return set()
    for name, value in parse_qsl(parts.query):
        if any(word in name.lower() for word in _SECRET_PARAMS):
            found.add(value)
    return {secret for secret in found if len(secret) >= 4}


_HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


@dataclass(frozen=True)
class ListenAddress:
    """Where a server listens: ``host:port``, an IPv6 address in brackets (``[::1]:9464``)."""

    host: str
    port: int

    @classmethod
    def parse(cls, value: object) -> ListenAddress:
        if isinstance(value, ListenAddress):
            return value
        text = value.strip() if isinstance(value, str) else ""
        host, colon, port = text.rpartition(":")
        if not colon or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
            raise ValueError(
                f"bad listen address {value!r}: write it as host:port (port 1-65535), "
                "like 127.0.0.1:9464"
            )
        if host.startswith("[") and host.endswith("]"):
            host = _ip(host[1:-1], 6, value)
        elif ":" in host:
            raise ValueError(f"bad listen address {value!r}: put an IPv6 address in brackets")
        elif host.replace(".", "").isdigit():
            host = _ip(host, 4, value)
        elif not _HOST_NAME.fullmatch(host):
            raise ValueError(f"bad listen address {value!r}: {host!r} is not a host name")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _ip(text: str, version: int, value: object) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if address is None or address.version != version:
        raise ValueError(f"bad listen address {value!r}: {text!r} is not an IPv{version} address")
    return str(address)
