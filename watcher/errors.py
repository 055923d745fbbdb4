"""The one exception tree of watcher.

    WatcherError                 anything watcher raises on purpose
    ├── ConfigError              the config file is unreadable or wrong (file, line, key)
    ├── FetchError               an HTTP fetch failed (url, status); a 304 is not one
    ├── FeedError                fetched bytes are not a usable feed (url)
    ├── ExtractError             no article text could be extracted (url)
    ├── StoreError               the database refused or is unreachable
    │   ├── NoDatabase           a read-only command found no database (it creates none)
    │   └── DatabaseGone         the open database was deleted, replaced or dropped
    ├── DeliveryError            an alert could not be handed to a notifier
    └── MetricsError             the metrics endpoint cannot serve (its address)

Messages are fixed in ``__init__`` so that every raise site produces the same wording, and the
context (feed URL, article id, config key) stays on the exception for logs and the CLI.
"""

from __future__ import annotations

import re

# "scheme://user:password@host": the password part of any URL written in a text.
_URL_PASSWORD = re.compile(r"(?<=://)([^/\s:@?#]*):([^/\s@?#]+)@")


def redact_credentials(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` URL in it as ``***``:
    error messages end up in logs and in the database, credentials must not."""
    return _URL_PASSWORD.sub(r"\1:***@", text)


class WatcherError(Exception):
    """Base of every error watcher raises deliberately."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(WatcherError):
    """The configuration cannot be used; names the file, line and key."""

    def __init__(
        self, problem: str, *, file: str | None = None, line: int | None = None, key: str = ""
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        where = file or "<config>"
        if line is not None:
            where = f"{where}:{line}"
        prefix = f"{where}: {key}: " if key else f"{where}: "
        super().__init__(prefix + problem)
        self.problem = problem


class FetchError(WatcherError):
    """An HTTP request did not produce a usable response."""

    def __init__(self, url: str, reason: str, *, status: int | None = None) -> None:
        self.url = url
        self.reason = reason
        self.status = status
        detail = f"HTTP {status}: {reason}" if status is not None else reason
        super().__init__(redact_credentials(f"{url}: {detail}"))


class FeedError(WatcherError):
    """Fetched bytes could not be read as a feed."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(redact_credentials(f"{url}: not a usable feed: {reason}"))


class ExtractError(WatcherError):
    """No trustworthy article text could be taken from a page."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: extraction failed: {reason}")


class StoreError(WatcherError):
    """The database could not be opened, migrated or written."""

    def __init__(self, reason: str, *, database: str = "") -> None:
        self.database = database
        self.reason = reason
        super().__init__(f"database {database}: {reason}" if database else f"database: {reason}")


class NoDatabase(StoreError):
    """A read-only command found no database to read: it never creates one."""

    def __init__(self, database: str, missing: str) -> None:
        super().__init__(
            f"{missing} (`watcher check` or `watcher run` creates it)", database=database
        )


class DatabaseGone(StoreError):
    """The database opened at start is no longer there: deleted, replaced or dropped."""

    def __init__(self, database: str, what: str, consequence: str = "stopping") -> None:
        self.what = what
        super().__init__(f"{what}; {consequence}", database=database)


class DeliveryError(WatcherError):
    """An alert could not be handed to a notifier."""

    def __init__(self, notifier: str, reason: str) -> None:
        self.notifier = notifier
        super().__init__(f"notifier {notifier}: {reason}")


class MetricsError(WatcherError):
    """The metrics and health endpoint cannot be served."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"metrics: {reason}")


class WebError(WatcherError):
    """The web view cannot be served (a busy port, an address needing a password)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"web: {reason}")
