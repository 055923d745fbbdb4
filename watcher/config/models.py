"""The config file: pydantic models (``extra="forbid"``) and ``${ENV}`` expansion; the values
they are made of (durations, sizes, rate limits, ...) are in :mod:`watcher.config.values`.

Every problem becomes a :class:`ConfigError` naming the file, the line and the key, e.g.
``watcher.yaml:14: feeds[2].interval: bad duration '15 minutes': write it like 30s, 15m, 2h or 7d``.
"""

from __future__ import annotations

import functools
import operator
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from watcher.config.allowlist import AllowList, parse_allow_entry
from watcher.config.live import LivePagesSettings
from watcher.config.services import (
    ArchiveSettings,
    CpuSettings,
    MetricsSettings,
    QueueSettings,
    WebSettings,
    queue_shape,
)
from watcher.config.values import (
    ByteSize,
    Duration,
    Model,
    RateLimit,
    notifier_url,
    url_secrets,
)
from watcher.config.yamlsource import LocatedData, Path_
from watcher.errors import ConfigError, redact_credentials

DEFAULT_CONFIG_NAME = "watcher.yaml"
DEFAULT_STATE_DIR = "watcher-data"


class RecheckStep(Model):
    """Until an article is ``until`` old, re-check it every ``every``."""

    until: Duration
    every: Duration


DEFAULT_RECHECK: tuple[RecheckStep, ...] = tuple(
    RecheckStep.model_validate({"until": u, "every": e})
    for u, e in (("3h", "15m"), ("1d", "1h"), ("3d", "3h"), ("7d", "12h"))
)


def _check_steps(steps: list[RecheckStep] | None) -> list[RecheckStep] | None:
    if steps is None:
        return None
    if not steps:
        raise ValueError("needs at least one {until, every} step")
    untils = [step.until for step in steps]
    if untils != sorted(set(untils)):
        raise ValueError("each step's `until` must be later than the one before")
    return steps


class FetchSettings(Model):
    """How pages and feeds are fetched."""

    connect_timeout: Duration = timedelta(seconds=10)
    read_timeout: Duration = timedelta(seconds=20)
    deadline: Duration = timedelta(seconds=60)
    max_bytes: ByteSize = 10 * 1000 * 1000
    max_redirects: int = Field(default=5, ge=0, le=20)
    per_host: int = Field(default=2, ge=1, le=32)
    concurrency: int = Field(default=16, ge=1, le=256)
    user_agent: str | None = None


class Defaults(Model):
    """Settings every feed inherits unless it sets its own."""

    interval: Duration = timedelta(minutes=15)
    fetch_article: bool = True
    recheck: list[RecheckStep] = Field(default_factory=lambda: list(DEFAULT_RECHECK))
    track_for: Duration | None = None
    # A feed with no new article for this long is reported unhealthy (None: never).
    stale_after: Duration | None = None

    @field_validator("recheck")
    @classmethod
    def _valid_steps(cls, steps: list[RecheckStep] | None) -> list[RecheckStep] | None:
        return _check_steps(steps)


def _allow_entry(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("an allow_hosts entry is a host name or a network like 10.20.0.0/16")
    return str(parse_allow_entry(value))  # normalised, so AllowList.parse cannot fail later


AllowEntry = Annotated[str, BeforeValidator(_allow_entry)]


class FeedConfig(Model):
    name: str = Field(min_length=1, pattern=r"^[\w.-]+$")
    url: str
    # A news sitemap (or sitemap index) instead of a feed: written `sitemap: URL` in place of
    # `url:`, and then also the feed's `url` (polled the same way).
    sitemap: str | None = None
    # false: muted, not polled (its articles and versions are kept; rules may still name it).
    enabled: bool = True
    interval: Duration | None = None
    fetch_article: bool | None = None
    recheck: list[RecheckStep] | None = None
    track_for: Duration | None = None
    # A feed with no new article for this long is reported unhealthy (None: never).
    stale_after: Duration | None = None
    tags: list[str] = Field(default_factory=list)
    # Hosts and networks this feed's article links may reach although they are private.
    allow_hosts: list[AllowEntry] = Field(default_factory=list)

    @field_validator("recheck")
    @classmethod
    def _valid_steps(cls, steps: list[RecheckStep] | None) -> list[RecheckStep] | None:
        return _check_steps(steps)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return check_http_url(url)

    @model_validator(mode="before")
    @classmethod
    def _sitemap_is_the_url(cls, data: object) -> object:
        if not isinstance(data, dict) or data.get("sitemap") is None:
            return data
        if "url" in data:
            raise ValueError("a feed has `url` (RSS, Atom, JSON Feed) or `sitemap`, not both")
        return {**data, "url": data["sitemap"]}

    @field_validator("sitemap")
    @classmethod
    def _http_sitemap(cls, url: str | None) -> str | None:
        return None if url is None else check_http_url(url)


def check_http_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"bad URL {url!r}: needs http:// or https:// and a host name")
    return url.strip()


class NotifierConfig(Model):
    """Where a notifier sends: apprise URLs and/or an apprise config file, and how often."""

    urls: list[Annotated[str, Field(min_length=1), AfterValidator(notifier_url)]] = Field(
        default_factory=list
    )
    apprise_config: str | None = None
    # With apprise_config: only the services carrying one of these tags (default: all).
    tags: list[str] = Field(default_factory=list)
    # Batch pending alerts into one message per window instead of one message per alert.
    digest: Duration | None = None
    # Cap on messages; the overflow waits for the next digest, never dropped.
    rate_limit: Annotated[RateLimit, BeforeValidator(RateLimit.parse)] | None = None

    @model_validator(mode="after")
    def _has_target(self) -> NotifierConfig:
        if not self.urls and not self.apprise_config:
            raise ValueError("a notifier needs at least one apprise URL or an apprise_config file")
        if self.tags and not self.apprise_config:
            raise ValueError("`tags` pick services of an apprise_config file; this has none")
        return self


def _notifier_shape(value: object) -> object:
    """One URL, a list of URLs, or a mapping: all become a NotifierConfig."""
    if isinstance(value, str):
        return {"urls": [value]}
    if isinstance(value, list):
        return {"urls": value}
    if isinstance(value, dict):
        return value
    raise ValueError("a notifier is an apprise URL, a list of URLs, or {apprise_config: FILE}")


class RetrySettings(Model):
    """Failed sends are retried after ``first``, doubling up to ``max`` (with jitter), until
    the alert is ``give_up_after`` old."""

    first: Duration = timedelta(seconds=30)
    max: Duration = timedelta(hours=1)
    give_up_after: Duration = timedelta(days=2)

    @model_validator(mode="after")
    def _ordered(self) -> RetrySettings:
        if self.max < self.first:
            raise ValueError("retry `max` must be at least `first`")
        return self


HEALTH_RULE = "feed-health"  # the rule name feed-health alerts are recorded under


class HealthSettings(Model):
    """When a feed is reported unhealthy (once; and once more when it recovers)."""

    # Notifiers for feed-health alerts (default: those of delivery.default).
    notify: list[str] = Field(default_factory=list)
    # Failed polls in a row that make a feed unhealthy (a 410 Gone does at once).
    error_streak: int = Field(default=5, ge=1)
    # Checks failing for at least this share of a feed's articles checked within `window`
    # (and at least `min_articles` of them): a site redesign or a block, not one bad page.
    failing_share: float = Field(default=0.5, gt=0, le=1)
    min_articles: int = Field(default=4, ge=1)
    window: Duration = timedelta(hours=6)


class DeliverySettings(Model):
    """How recorded alerts reach the notifiers."""

    # Notifiers for the alerts of rules that name none.
    default: list[str] = Field(default_factory=list)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    # A folder of Jinja2 templates overriding the built-in ones (default: templates/ beside
    # the config file, when it exists).
    templates: str | None = None
    # How long one send to one service may take before it counts as failed.
    timeout: Duration = timedelta(seconds=30)


NotifierSpec = Annotated[NotifierConfig, BeforeValidator(_notifier_shape)]

Event = Literal["new", "changed", "removed", "restored"]
# A rule without `events:` fires on these: a take-down alerts only the rules that name it.
_DEFAULT_EVENTS: tuple[Event, ...] = ("new", "changed")
# What kind of change a version is (watcher.pipeline.classes decides).
EditClass = Literal["typo", "wording", "substance", "headline", "correction", "revert", "flip-flop"]


class RuleConfig(Model):
    name: str = Field(min_length=1)
    # false: muted, no alerts (its recorded alerts stay).
    enabled: bool = True
    events: list[Event] = Field(default_factory=lambda: list(_DEFAULT_EVENTS), min_length=1)
    keywords: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    regex: str | None = None
    feeds: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    min_change: int = Field(default=0, ge=0)
    classes: list[EditClass] = Field(default_factory=list)
    notify: list[str] = Field(default_factory=list)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"regex {pattern!r} does not compile: {exc}") from None
        return pattern


class Config(Model):
    database: str | None = None
    # Embedded (the default) or a Procrastinate queue on the PostgreSQL `database`.
    queue: Annotated[QueueSettings, BeforeValidator(queue_shape)] = Field(
        default_factory=QueueSettings
    )
    state_dir: str | None = None
    # How long a retired article (no longer re-checked) keeps its versions and alerts; the
    # daily prune deletes it after that. None: forever.
    keep_versions_for: Duration | None = None
    # Off by default: article links come from third parties (see watcher.pipeline.netguard).
    allow_private_networks: bool = False
    defaults: Defaults = Field(default_factory=Defaults)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    cpu: CpuSettings = Field(default_factory=CpuSettings)
    feeds: list[FeedConfig] = Field(default_factory=list)
    # OPML subscription lists (relative to this file) whose feeds join `feeds` (see
    # watcher.config.opml); a URL in both is the `feeds` entry.
    feeds_from: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    notifiers: dict[Annotated[str, Field(pattern=r"^[\w.-]+$")], NotifierSpec] = Field(
        default_factory=dict
    )
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    rules: list[RuleConfig] = Field(default_factory=list)
    live_pages: LivePagesSettings = Field(default_factory=LivePagesSettings)
    # Off unless set: the daemon's /metrics and /healthz endpoint (watcher.metrics).
    metrics: MetricsSettings | None = None
    # Off unless set: the original HTTP response of every version, as WARC files.
    archive: ArchiveSettings | None = None
    # Off unless set: the web view served by `watcher run`, and the links in alerts.
    web: WebSettings | None = None
    # Where the file was read from; relative paths in it are relative to its folder.
    source: str = Field(default="<memory>", exclude=True)
    # Values substituted from ${VAR}: masked wherever text is shown to a person.
    secrets: frozenset[str] = Field(default_factory=frozenset, exclude=True)
    # The line of every key in the file, for checks made after loading (see error_at).
    _lines: dict[Path_, int] = PrivateAttr(default_factory=dict)
    # `feeds` and `rules` hold only the enabled ones (everything that runs reads them); these
    # keep every one the file declares, in its order, muted ones (`enabled: false`) included.
    _declared_feeds: tuple[FeedConfig, ...] = PrivateAttr(default=())
    _declared_rules: tuple[RuleConfig, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _set_muted_aside(self) -> Config:
        self._declared_feeds, self._declared_rules = tuple(self.feeds), tuple(self.rules)
        if not all(feed.enabled for feed in self.feeds):
            object.__setattr__(self, "feeds", [feed for feed in self.feeds if feed.enabled])
        if not all(rule.enabled for rule in self.rules):
            object.__setattr__(self, "rules", [rule for rule in self.rules if rule.enabled])
        return self

    @property
    def declared_feeds(self) -> tuple[FeedConfig, ...]:
        return self._declared_feeds

    def with_feeds(self, added: list[FeedConfig]) -> Config:
        """This config with more feeds (those of ``feeds_from`` files), muted ones set aside
        as the validator does for ``feeds:``."""
        enabled = [feed for feed in added if feed.enabled]
        copy = self.model_copy(update={"feeds": [*self.feeds, *enabled]})
        copy._declared_feeds = (*self._declared_feeds, *added)
        return copy

    @property
    def declared_rules(self) -> tuple[RuleConfig, ...]:
        return self._declared_rules

    @property
    def muted_feeds(self) -> tuple[FeedConfig, ...]:
        return tuple(feed for feed in self._declared_feeds if not feed.enabled)

    @property
    def muted_rules(self) -> tuple[RuleConfig, ...]:
        return tuple(rule for rule in self._declared_rules if not rule.enabled)

    def error_at(self, path: Path_, problem: str) -> ConfigError:
        """A ConfigError naming the key at ``path`` and its line, for a problem found after
        loading (apprise refusing a notifier URL, say)."""
        return LocatedData(None, self._lines, self.source).error(path, problem)

    @functools.cached_property
    def masked_values(self) -> tuple[str, ...]:
        """What :meth:`mask` hides, longest first: worked out once, since every log line is
        masked."""
        secrets = set(self.secrets)
        for notifier in self.notifiers.values():
            for url in notifier.urls:
                secrets |= url_secrets(url)
        return tuple(sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True))

    def mask(self, text: str) -> str:
        """``text`` with every value taken from the environment, every password or token
        written in a notifier URL, and the password of any URL, hidden as ``***``."""
        for secret in self.masked_values:
            text = text.replace(secret, "***")
        return redact_credentials(text)

    @functools.cached_property
    def feeds_by_name(self) -> dict[str, FeedConfig]:
        """Built once: every check looks its feeds up here."""
        return {feed.name: feed for feed in self.feeds}

    def feed(self, name: str) -> FeedConfig:
        found = self.feeds_by_name.get(name)
        if found is None:
            raise ConfigError(f"no feed named {name!r}", file=self.source, key="feeds")
        return found

    def settings_for(self, feed: FeedConfig | None) -> FeedSettings:
        """The feed's own settings, falling back to ``defaults`` (all of them for None)."""
        d = self.defaults
        if feed is None:
            return FeedSettings(
                d.interval,
                d.fetch_article,
                cut_schedule(tuple(d.recheck), d.track_for),
                (),
                d.stale_after,
            )
        steps = feed.recheck if feed.recheck is not None else d.recheck
        track_for = feed.track_for or (d.track_for if feed.recheck is None else None)
        return FeedSettings(
            interval=feed.interval or d.interval,
            fetch_article=d.fetch_article if feed.fetch_article is None else feed.fetch_article,
            recheck=cut_schedule(tuple(steps), track_for),
            tags=tuple(feed.tags),
            stale_after=feed.stale_after or d.stale_after,
        )

    def configured_feeds(self, names: Iterable[str]) -> list[FeedConfig | None]:
        """The configured feed for each name, in order; None for a feed no longer configured."""
        return [self.feeds_by_name.get(name) for name in names]

    def allow_list_for(self, feed_names: Iterable[str]) -> AllowList:
        """What an article's link may reach beyond public addresses, given the feeds carrying it.

        Only what *every* one of them allows: the stored link is whichever feed reported it
        last, so one feed's allowances must not serve another feed's links. A feed no longer
        in the config allows nothing.
        """
        lists = [
            AllowList.parse(feed.allow_hosts) if feed is not None else AllowList()
            for feed in self.configured_feeds(feed_names)
        ]
        return functools.reduce(operator.and_, lists) if lists else AllowList()

    def resolved_state_dir(self) -> Path:
        """``state_dir`` from the file, else systemd's $STATE_DIRECTORY, else ./watcher-data."""
        if self.state_dir:
            return self.relative_path(self.state_dir)
        systemd_dir = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
        return Path(systemd_dir or DEFAULT_STATE_DIR)

    def warc_dir(self) -> Path | None:
        """The WARC archive's folder (None: archive off); relative to the state directory."""
        if self.archive is None:
            return None
        path = Path(self.archive.warc).expanduser()
        return path if path.is_absolute() else self.resolved_state_dir() / path

    def database_url(self) -> str:
        if self.database:
            return self.database
        return f"sqlite:///{self.resolved_state_dir() / 'watcher.db'}"

    def templates_dir(self) -> Path | None:
        """Where the user's template overrides are: ``delivery.templates``, else a
        ``templates`` folder beside the config file when there is one."""
        if self.delivery.templates:
            return self.relative_path(self.delivery.templates)
        beside = self.relative_path("templates")
        return beside if not self.source.startswith("<") and beside.is_dir() else None

    def notifiers_for(self, rule_name: str) -> tuple[str, ...]:
        """Where a rule's alerts go: its own ``notify``, else ``delivery.default``. A rule no
        longer in the config goes to the default route too (its alerts were recorded)."""
        if rule_name == HEALTH_RULE:
            return tuple(self.health.notify or self.delivery.default)
        rule = next((r for r in self.rules if r.name == rule_name), None)
        return tuple(rule.notify if rule and rule.notify else self.delivery.default)

    def relative_path(self, value: str) -> Path:
        """A path from the config file, taken relative to the file's folder."""
        path = Path(value).expanduser()
        if path.is_absolute() or self.source.startswith("<"):
            return path
        return Path(self.source).parent / path


@dataclass(frozen=True)
class FeedSettings:
    """A feed's effective settings after defaults are applied."""

    interval: timedelta
    fetch_article: bool
    recheck: tuple[RecheckStep, ...]
    tags: tuple[str, ...]
    stale_after: timedelta | None = None

    @property
    def track_for(self) -> timedelta:
        return self.recheck[-1].until


def cut_schedule(
    steps: tuple[RecheckStep, ...], track_for: timedelta | None
) -> tuple[RecheckStep, ...]:
    """Make the schedule end at ``track_for`` (extending or cutting the last step)."""
    if track_for is None:
        return steps
    kept = [step for step in steps if step.until < track_for]
    covering = next((s for s in steps if s.until >= track_for), steps[-1])
    return (*kept, RecheckStep(until=track_for, every=covering.every))
