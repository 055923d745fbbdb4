"""The config file: pydantic models (``extra="forbid"``), ``${ENV}`` expansion and durations.

Every problem becomes a :class:`ConfigError` naming the file, the line and the key, e.g.
``watcher.yaml:14: feeds[2].interval: bad duration '15 minutes': write it like 30s, 15m, 2h or 7d``.
"""

from __future__ import annotations

import difflib
import functools
import operator
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from watcher.errors import ConfigError
from watcher.netguard import AllowList, parse_allow_entry
from watcher.yamlsource import LocatedData, Path_, format_path, load_yaml

DEFAULT_CONFIG_NAME = "watcher.yaml"
DEFAULT_STATE_DIR = "watcher-data"

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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecheckStep(_Model):
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


class FetchSettings(_Model):
    """How pages and feeds are fetched."""

    connect_timeout: Duration = timedelta(seconds=10)
    read_timeout: Duration = timedelta(seconds=20)
    deadline: Duration = timedelta(seconds=60)
    max_bytes: ByteSize = 10 * 1000 * 1000
    max_redirects: int = Field(default=5, ge=0, le=20)
    per_host: int = Field(default=2, ge=1, le=32)
    concurrency: int = Field(default=16, ge=1, le=256)
    user_agent: str | None = None


class Defaults(_Model):
    """Settings every feed inherits unless it sets its own."""

    interval: Duration = timedelta(minutes=15)
    fetch_article: bool = True
    recheck: list[RecheckStep] = Field(default_factory=lambda: list(DEFAULT_RECHECK))
    track_for: Duration | None = None

    @field_validator("recheck")
    @classmethod
    def _valid_steps(cls, steps: list[RecheckStep] | None) -> list[RecheckStep] | None:
        return _check_steps(steps)


def _allow_entry(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("an allow_hosts entry is a host name or a network like 10.20.0.0/16")
    return str(parse_allow_entry(value))  # normalised, so AllowList.parse cannot fail later


AllowEntry = Annotated[str, BeforeValidator(_allow_entry)]


class FeedConfig(_Model):
    name: str = Field(min_length=1, pattern=r"^[\w.-]+$")
    url: str
    interval: Duration | None = None
    fetch_article: bool | None = None
    recheck: list[RecheckStep] | None = None
    track_for: Duration | None = None
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


def check_http_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"bad URL {url!r}: needs http:// or https:// and a host name")
    return url.strip()


class NotifierConfig(_Model):
    """Where a notifier sends: apprise URLs and/or an apprise config file."""

    urls: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    apprise_config: str | None = None

    @model_validator(mode="after")
    def _has_target(self) -> NotifierConfig:
        if not self.urls and not self.apprise_config:
            raise ValueError("a notifier needs at least one apprise URL or an apprise_config file")
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


NotifierSpec = Annotated[NotifierConfig, BeforeValidator(_notifier_shape)]

Event = Literal["new", "changed"]
_ALL_EVENTS: tuple[Event, ...] = ("new", "changed")


class RuleConfig(_Model):
    name: str = Field(min_length=1)
    events: list[Event] = Field(default_factory=lambda: list(_ALL_EVENTS), min_length=1)
    keywords: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    regex: str | None = None
    feeds: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    min_change: int = Field(default=0, ge=0)
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


class Config(_Model):
    database: str | None = None
    state_dir: str | None = None
    # Off by default: article links come from third parties (see watcher.netguard).
    allow_private_networks: bool = False
    defaults: Defaults = Field(default_factory=Defaults)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    feeds: list[FeedConfig] = Field(default_factory=list)
    notifiers: dict[str, NotifierSpec] = Field(default_factory=dict)
    rules: list[RuleConfig] = Field(default_factory=list)
    # Where the file was read from; relative paths in it are relative to its folder.
    source: str = Field(default="<memory>", exclude=True)
    # Values substituted from ${VAR}: masked wherever text is shown to a person.
    secrets: frozenset[str] = Field(default_factory=frozenset, exclude=True)

    def feed(self, name: str) -> FeedConfig:
        for feed in self.feeds:
            if feed.name == name:
                return feed
        raise ConfigError(f"no feed named {name!r}", file=self.source, key="feeds")

    def settings_for(self, feed: FeedConfig | None) -> FeedSettings:
        """The feed's own settings, falling back to ``defaults`` (all of them for None)."""
        d = self.defaults
        if feed is None:
            return FeedSettings(
                d.interval, d.fetch_article, cut_schedule(tuple(d.recheck), d.track_for), ()
            )
        steps = feed.recheck if feed.recheck is not None else d.recheck
        track_for = feed.track_for or (d.track_for if feed.recheck is None else None)
        return FeedSettings(
            interval=feed.interval or d.interval,
            fetch_article=d.fetch_article if feed.fetch_article is None else feed.fetch_article,
            recheck=cut_schedule(tuple(steps), track_for),
            tags=tuple(feed.tags),
        )

    def configured_feeds(self, names: Iterable[str]) -> list[FeedConfig | None]:
        """The configured feed for each name, in order; None for a feed no longer configured."""
        configured = {feed.name: feed for feed in self.feeds}
        return [configured.get(name) for name in names]

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
            return self._relative_to_config(self.state_dir)
        systemd_dir = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
        return Path(systemd_dir or DEFAULT_STATE_DIR)

    def database_url(self) -> str:
        if self.database:
            return self.database
        return f"sqlite:///{self.resolved_state_dir() / 'watcher.db'}"

    def _relative_to_config(self, value: str) -> Path:
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


# --------------------------------------------------------------------------- loading

_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(value: Any, path: Path_, src: LocatedData, found: set[str]) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string; ``$$`` is a literal ``$``."""
    if isinstance(value, dict):
        return {k: _expand_env(v, (*path, k), src, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, (*path, i), src, found) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            found.add(os.environ[name])
            return os.environ[name]
        if default is not None:
            return default
        raise src.error(path, f"environment variable {name} is not set (used as ${{{name}}})")

    return _ENV_REF.sub(substitute, value)


_HINTS = {"on": "rules say which events they fire on with `events:`"}


def _friendly(error: Any, model_fields: dict[Path_, list[str]]) -> str:
    kind, message, loc = error["type"], str(error["msg"]), tuple(error["loc"])
    if kind == "extra_forbidden":
        key = str(loc[-1])
        if key in _HINTS:
            return f"unknown key {key!r}: {_HINTS[key]}"
        close = difflib.get_close_matches(key, model_fields.get(loc[:-1], []), n=1)
        return f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind == "missing":
        return "required key is missing"
    return message.removeprefix("Value error, ")


def _known_fields(data: Any) -> dict[Path_, list[str]]:
    """Field names allowed at each path, for "did you mean" hints."""
    names: dict[Path_, list[str]] = {
        (): list(Config.model_fields),
        ("defaults",): list(Defaults.model_fields),
        ("fetch",): list(FetchSettings.model_fields),
    }
    for key, model in (("feeds", FeedConfig), ("rules", RuleConfig)):
        items = data.get(key) if isinstance(data, dict) else None
        for i in range(len(items) if isinstance(items, list) else 0):
            names[(key, i)] = list(model.model_fields)
    return names


def _loc_path(loc: tuple[Any, ...]) -> Path_:
    return tuple(p if isinstance(p, int) else str(p) for p in loc)


def _validate(src: LocatedData, data: Any, secrets: set[str]) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(
            "the file must be a mapping of keys (database, feeds, rules, ...)",
            file=src.file,
            line=1,
        )
    data.pop("source", None)
    data.pop("secrets", None)
    try:
        return Config.model_validate({**data, "source": src.file, "secrets": frozenset(secrets)})
    except ValidationError as exc:
        fields = _known_fields(data)
        errors = sorted(exc.errors(), key=lambda e: src.line_of(_loc_path(e["loc"])) or 0)
        first, *rest = errors
        path = _loc_path(first["loc"])
        more = [
            f"\n  {src.file}:{src.line_of(_loc_path(e['loc']))}: "
            f"{format_path(_loc_path(e['loc']))}: {_friendly(e, fields)}"
            for e in rest[:9]
        ]
        raise src.error(path, _friendly(first, fields) + "".join(more)) from None


def _check_references(config: Config, src: LocatedData) -> None:
    """Cross-references pydantic cannot see: names that must exist, names that must be unique."""
    feed_names: set[str] = set()
    for i, feed in enumerate(config.feeds):
        if feed.name in feed_names:
            raise src.error(("feeds", i, "name"), f"duplicate feed name {feed.name!r}")
        feed_names.add(feed.name)
    tags = {tag for feed in config.feeds for tag in feed.tags}
    rule_names: set[str] = set()
    for i, rule in enumerate(config.rules):
        if rule.name in rule_names:
            raise src.error(("rules", i, "name"), f"duplicate rule name {rule.name!r}")
        rule_names.add(rule.name)
        _check_names(src, ("rules", i, "feeds"), rule.feeds, feed_names, "feed")
        _check_names(src, ("rules", i, "tags"), rule.tags, tags, "feed tag")
        _check_names(src, ("rules", i, "notify"), rule.notify, set(config.notifiers), "notifier")


def _check_names(
    src: LocatedData, path: Path_, used: list[str], known: set[str], what: str
) -> None:
    for j, name in enumerate(used):
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            listing = ", ".join(sorted(known)) or "none defined"
            raise src.error((*path, j), f"unknown {what} {name!r}{hint}; known: {listing}")


def parse_config(text: str, file: str = "<memory>") -> Config:
    """Validate config text; raises ConfigError naming file, line and key."""
    src = load_yaml(text, file)
    secrets: set[str] = set()
    data = _expand_env(src.data, (), src, secrets)
    config = _validate(src, data, secrets)
    _check_references(config, src)
    return config


def config_path(explicit: str | None) -> Path:
    """``-c`` if given, else $WATCHER_CONFIG, else ./watcher.yaml."""
    return Path(explicit or os.environ.get("WATCHER_CONFIG") or DEFAULT_CONFIG_NAME)


def load_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "no such file (give one with -c/--config or $WATCHER_CONFIG)", file=str(path)
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the file: {exc}", file=str(path)) from None
    return parse_config(text, str(path))
