"""The sections of the config for the optional services around the pipeline: ``metrics``,
``web`` (with its ``auth``), ``archive`` and ``queue``. Each is off (or embedded) unless set;
and ``cpu``, the processes that extract pages (on unless ``workers: 1``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from watcher.config.values import ByteSize, Duration, ListenAddress, Model


def _at_least_3s(value: timedelta) -> timedelta:
    if value < timedelta(seconds=3):
        raise ValueError("stalled_after must be at least 3s (heartbeats go every third of it)")
    return value


class CpuSettings(Model):
    """Where pages are extracted: ``workers`` processes beside the event loop, so fetching
    goes on while pages are extracted (see watcher.tasks.cpu). ``auto``: one per core;
    1: no pool, extraction on the event loop."""

    workers: Literal["auto"] | Annotated[int, Field(ge=1, le=64)] = "auto"

    def worker_count(self, cores: int | None) -> int:
        return max(1, cores or 1) if self.workers == "auto" else self.workers


class MetricsSettings(Model):
    """``watcher run``'s HTTP endpoint: /metrics for Prometheus, /healthz for probes."""

    # Anyone who can reach it reads feed and notifier names: keep it on loopback or a
    # monitoring network.
    listen: Annotated[ListenAddress, BeforeValidator(ListenAddress.parse)]


class ArchiveSettings(Model):
    """The archive of originals: every page response that made a version (and every failed
    one), as WARC 1.1 files (see watcher.storage.archive)."""

    # The folder of the WARC files; a relative path is under the state directory.
    warc: str
    # A new file starts when one reaches this size (and at each UTC day and process start).
    max_file_size: ByteSize = 1000 * 1000 * 1000


class WebAuth(Model):
    """Who may read the web view: a bearer token, or a user name and password (HTTP basic
    auth). The secret must come from the environment (``${VAR}``), never the file itself."""

    token: str | None = None
    user: str | None = None
    password: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> WebAuth:
        if self.token is not None and (self.user is not None or self.password is not None):
            raise ValueError("give either `token` or `user` and `password`, not both")
        if self.token is None and (self.user is None or self.password is None):
            raise ValueError("needs `token`, or both `user` and `password`")
        secret = self.token if self.token is not None else self.password
        if secret is not None and len(secret) < 12:
            raise ValueError("the token or password is shorter than 12 characters")
        return self

    @property
    def secret(self) -> str:
        return self.token if self.token is not None else self.password or ""


class WebSettings(Model):
    """The read-only web view (:mod:`watcher.web`): pages, Atom feeds, a JSON API."""

    # Where `watcher run` serves it, with /metrics and /healthz on the same port. Off unless set.
    listen: Annotated[ListenAddress, BeforeValidator(ListenAddress.parse)] | None = None
    # How readers reach it (https://watcher.example.org): alerts then link to their diff.
    base_url: str | None = None
    # Required to listen on anything but loopback.
    auth: WebAuth | None = None

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL like https://watcher.example.org")
        if parts.query or parts.fragment:
            raise ValueError(f"{value!r}: a base URL has no ?query or #fragment")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _auth_off_loopback(self) -> WebSettings:
        if self.listen is not None and self.auth is None and not is_loopback(self.listen.host):
            raise ValueError(
                f"listening on {self.listen} (not loopback) needs `auth` (a token or a "
                "password from ${VAR}): everyone who can reach it would read the database"
            )
        return self


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: the addresses only this machine reaches."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


QUEUE_KINDS = ("embedded", "procrastinate")


class QueueSettings(Model):
    """Who runs the tasks: ``embedded`` (``watcher run``: one process, APScheduler) or
    ``procrastinate`` (any number of ``watcher worker`` processes sharing a PostgreSQL
    job queue; see :mod:`watcher.distributed`)."""

    kind: Literal["embedded", "procrastinate"] = "embedded"
    # A worker silent this long is dead: its jobs under way are handed to another worker.
    # Heartbeats go every third of it.
    stalled_after: Annotated[Duration, AfterValidator(_at_least_3s)] = timedelta(seconds=30)

    @property
    def distributed(self) -> bool:
        return self.kind == "procrastinate"


def queue_shape(value: object) -> object:
    """``queue: procrastinate`` is short for ``queue: {kind: procrastinate}``."""
    if isinstance(value, str):
        if value not in QUEUE_KINDS:
            raise ValueError(f"unknown queue {value!r}: one of {', '.join(QUEUE_KINDS)}")
        return {"kind": value}
    return value
