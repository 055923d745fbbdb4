"""Loading the config: YAML with a line per key, ``${ENV}`` expanded, validated by the
models of :mod:`watcher.config.models`, cross-references checked.

Every problem becomes a :class:`~watcher.errors.ConfigError` naming the file, the line and
the key, with a "did you mean" where a name is close to a known one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError

from watcher.config.models import (
    DEFAULT_CONFIG_NAME,
    HEALTH_RULE,
    Config,
    Defaults,
    DeliverySettings,
    FeedConfig,
    FetchSettings,
    HealthSettings,
    NotifierConfig,
    RetrySettings,
    RuleConfig,
    check_http_url,
)
from watcher.config.opml import OpmlFeed, read_opml, unique_names
from watcher.config.services import ArchiveSettings, MetricsSettings
from watcher.config.yamlsource import LocatedData, Path_, format_path, load_yaml
from watcher.errors import ConfigError

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
        import difflib  # only for a config with a mistake in it

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
        ("delivery",): list(DeliverySettings.model_fields),
        ("metrics",): list(MetricsSettings.model_fields),
        ("archive",): list(ArchiveSettings.model_fields),
        ("delivery", "retry"): list(RetrySettings.model_fields),
        ("health",): list(HealthSettings.model_fields),
    }
    notifiers = data.get("notifiers") if isinstance(data, dict) else None
    for name, spec in notifiers.items() if isinstance(notifiers, dict) else ():
        if isinstance(spec, dict):
            names[("notifiers", name)] = list(NotifierConfig.model_fields)
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
    for i, feed in enumerate(config.declared_feeds):
        if feed.name in feed_names:
            raise src.error(("feeds", i, "name"), f"duplicate feed name {feed.name!r}")
        feed_names.add(feed.name)
    tags = {tag for feed in config.declared_feeds for tag in feed.tags}
    rule_names: set[str] = set()
    for i, rule in enumerate(config.declared_rules):
        if rule.name in rule_names:
            raise src.error(("rules", i, "name"), f"duplicate rule name {rule.name!r}")
        if rule.name == HEALTH_RULE:
            raise src.error(
                ("rules", i, "name"), f"{HEALTH_RULE!r} is reserved for feed-health alerts"
            )
        rule_names.add(rule.name)
        _check_names(src, ("rules", i, "feeds"), rule.feeds, feed_names, "feed")
        _check_names(src, ("rules", i, "tags"), rule.tags, tags, "feed tag")
        _check_names(src, ("rules", i, "notify"), rule.notify, set(config.notifiers), "notifier")
    notifier_names = set(config.notifiers)
    _check_names(src, ("delivery", "default"), config.delivery.default, notifier_names, "notifier")
    _check_names(src, ("health", "notify"), config.health.notify, notifier_names, "notifier")
    _check_web_secret(config, src)
    _check_queue(config, src)
    for name, notifier in config.notifiers.items():
        if notifier.apprise_config and not config.relative_path(notifier.apprise_config).is_file():
            path = config.relative_path(notifier.apprise_config)
            raise src.error(("notifiers", name, "apprise_config"), f"no such file: {path}")


def _check_web_secret(config: Config, src: LocatedData) -> None:
    """A web token or password written in the file would sit in backups and in git: it must
    come from the environment, like every other secret."""
    auth = config.web.auth if config.web is not None else None
    if auth is not None and auth.secret not in config.secrets:
        key = "token" if auth.token is not None else "password"
        raise src.error(("web", "auth", key), "must come from the environment: write ${VAR}")


def _check_queue(config: Config, src: LocatedData) -> None:
    """A Procrastinate queue lives in PostgreSQL: it needs a PostgreSQL `database`."""
    if not config.queue.distributed:
        return
    database = config.database or ""
    if not database.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        where = f"the database is {database}" if database else "no `database:` is set (SQLite)"
        raise src.error(
            ("queue",),
            f"`procrastinate` needs a PostgreSQL database (database: postgresql://...); "
            f"{where}",
        )


def _check_names(
    src: LocatedData, path: Path_, used: list[str], known: set[str], what: str
) -> None:
    for j, name in enumerate(used):
        if name not in known:
            import difflib  # only for a config with a mistake in it

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
    config = _with_opml_feeds(config, src)
    _check_references(config, src)
    config._lines = src.lines
    return config


def _with_opml_feeds(config: Config, src: LocatedData) -> Config:
    """``feeds`` plus the feeds of every ``feeds_from`` file (read again on every load, so a
    SIGHUP picks up an edited subscription list). A URL already in ``feeds``, or earlier in
    the lists, is that feed: the later ones only add their tags to an OPML feed."""
    if not config.feeds_from:
        return config
    found: dict[str, OpmlFeed] = {}
    files: dict[str, str] = {}
    for i, name in enumerate(config.feeds_from):
        path = config.relative_path(name)
        if not path.is_file():
            raise src.error(("feeds_from", i), f"no such file: {path}")
        for feed in read_opml(path):
            _check_opml_url(feed, str(path))
            key = url_key(feed.url)
            earlier = found.get(key)
            tags = earlier.tags + feed.tags if earlier else feed.tags
            kept = earlier or feed
            found[key] = OpmlFeed(kept.url, kept.title, tuple(dict.fromkeys(tags)), kept.line)
            files.setdefault(key, str(path))
    configured = {url_key(feed.url) for feed in config.declared_feeds}
    extra = [feed for key, feed in found.items() if key not in configured]
    names = unique_names(extra, (feed.name for feed in config.declared_feeds))
    added = [
        FeedConfig(name=name, url=feed.url.strip(), tags=list(feed.tags))
        for name, feed in zip(names, extra, strict=True)
    ]
    return config.with_feeds(added)


def _check_opml_url(feed: OpmlFeed, file: str) -> None:
    try:
        check_http_url(feed.url)
    except ValueError as exc:
        raise ConfigError(str(exc), file=file, line=feed.line, key="xmlUrl") from None


def url_key(url: str) -> str:
    """What makes two feed URLs the same feed: scheme and host are case-insensitive."""
    parts = urlsplit(url.strip())
    return urlunsplit(parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()))


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
