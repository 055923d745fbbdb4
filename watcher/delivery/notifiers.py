"""A notifier of the config as apprise services: each URL its own one-service Apprise object
(see :mod:`watcher.delivery.outbox` for why), with the body format the service shows best.
Apart from the outbox so that ``watcher validate`` loads and checks them without the
dispatcher's machinery.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apprise

from watcher.config.models import Config, NotifierConfig
from watcher.config.values import RateLimit
from watcher.delivery.plugins import load_plugins
from watcher.errors import ConfigError

if TYPE_CHECKING:
    from watcher.delivery.render import Renderer

_FORMATS = {
    apprise.NotifyFormat.TEXT: "text",
    apprise.NotifyFormat.HTML: "html",
    apprise.NotifyFormat.MARKDOWN: "markdown",
}


@dataclass(frozen=True)
class Target:
    """One service of a notifier (one apprise URL), alone in its Apprise object."""

    key: str  # stable identity: a hash of the full URL (never stored or shown in clear)
    label: str  # the URL as apprise prints it with privacy on: safe for logs
    body_format: str  # text | html | markdown
    service: apprise.Apprise


@dataclass(frozen=True)
class Notifier:
    name: str
    targets: tuple[Target, ...]
    digest: timedelta | None = None
    rate_limit: RateLimit | None = None

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(target.key for target in self.targets)


def build_notifiers(config: Config, names: Sequence[str] | None = None) -> dict[str, Notifier]:
    """These notifiers (default: every one) with their services loaded (apprise_config
    files read now); apprise loads the plugins their URLs need."""
    specs = {name: config.notifiers[name] for name in (names or config.notifiers)}
    _keep_apprise_reasons()
    if any(spec.apprise_config for spec in specs.values()):
        load_plugins(None)
    else:
        load_plugins(url for spec in specs.values() for url in spec.urls)
    return {name: _notifier(config, name, spec) for name, spec in specs.items()}


def _keep_apprise_reasons() -> None:
    """A failed send's reason is in apprise's log records: make sure they are made, whatever
    level the root logger has (where they are *shown* is the CLI's business). Without it a
    failure read "apprise: FAILURE" and nothing else."""
    apprise_log = logging.getLogger("apprise")
    if apprise_log.getEffectiveLevel() > logging.WARNING:
        apprise_log.setLevel(logging.WARNING)


def _notifier(config: Config, name: str, spec: NotifierConfig) -> Notifier:
    plugins = [_service(config, name, i, url) for i, url in enumerate(spec.urls)]
    if spec.apprise_config:
        plugins += _config_services(config, name, spec)
    targets = tuple(_target(plugin) for plugin in plugins if plugin is not None)
    if not targets:
        raise ConfigError(
            "no usable service (check the URLs and the apprise_config file)",
            file=config.source,
            key=f"notifiers.{name}",
        )
    return Notifier(name, targets, spec.digest, spec.rate_limit)


def _service(config: Config, name: str, index: int, url: str) -> Any:
    """The apprise service of one notifier URL; refused with apprise's own reason (it masks
    secrets) and the key's line, never echoing the URL."""
    capture = apprise.LogCapture(level=logging.WARNING, fmt="%(message)s")  # type: ignore[no-untyped-call]
    with capture as logs:
        plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        said = [line for line in logs.getvalue().splitlines() if line.strip()]
        reason = "; ".join(said[-2:]) or "unknown scheme or a required part missing"
        raise config.error_at(
            ("notifiers", name, "urls", index),
            f"apprise cannot use this URL: {reason} (`apprise --details` lists the URL forms)",
        )
    return plugin


def _config_services(config: Config, name: str, spec: NotifierConfig) -> list[Any]:
    assert spec.apprise_config is not None
    path = config.relative_path(spec.apprise_config)
    source = apprise.AppriseConfig()
    if not source.add(str(path)):
        raise ConfigError(
            f"apprise cannot read {path}", file=config.source, key=f"notifiers.{name}"
        )
    services = list(apprise.Apprise(source))
    if spec.tags:
        services = [s for s in services if set(spec.tags) & set(s.tags)]
    if not services:
        tagged = f" tagged {', '.join(spec.tags)}" if spec.tags else ""
        raise ConfigError(
            f"{path} defines no service{tagged}", file=config.source, key=f"notifiers.{name}"
        )
    return services


def _target(plugin: Any) -> Target:
    # apprise would otherwise sleep between two sends on one object (5.5 s for email).
    plugin.request_rate_per_sec = 0
    full_url = str(plugin.url(privacy=False))
    key = hashlib.sha256(full_url.encode()).hexdigest()[:16]
    service = apprise.Apprise()
    service.add(plugin)
    return Target(key, str(plugin.url(privacy=True)), _body_format(plugin), service)


def _body_format(plugin: Any) -> str:
    """What the service shows best: email HTML, chat Markdown, the rest plain text. A
    ``?format=`` in the URL decides first."""
    formats = plugin.notify_format
    if not isinstance(formats, tuple):
        return _FORMATS.get(formats, "text")
    chosen = getattr(plugin, "_format_override", None)
    if chosen is not None and chosen in formats:
        return _FORMATS.get(chosen, "text")
    if formats[0] == apprise.NotifyFormat.HTML:  # email: an HTML body with a text part
        return "html"
    if apprise.NotifyFormat.MARKDOWN in formats:  # chat services and webhooks
        return "markdown"
    return _FORMATS.get(formats[0], "text")


def delivery_setup(config: Config, now: datetime) -> tuple[dict[str, Notifier], Renderer]:
    """Notifiers loaded and user templates tried on a sample alert, so that a mistake stops
    start-up rather than an alert at 3 a.m."""
    renderer = _checked_renderer(config, now, config.templates_dir())
    return build_notifiers(config), renderer


def check_delivery(config: Config, now: datetime) -> None:
    """What :func:`delivery_setup` refuses, in the same order, keeping nothing it builds
    (``watcher validate``). Only a user's templates can be broken: without them none are
    tried and jinja2 is not even imported (about 20 ms of the command's CPU)."""
    templates = config.templates_dir()
    if templates is not None:
        _checked_renderer(config, now, templates)
    build_notifiers(config)


def _checked_renderer(config: Config, now: datetime, templates: Path | None) -> Renderer:
    from watcher.delivery.render import Renderer, sample_alert

    renderer = Renderer(templates, config.web.base_url if config.web else None)
    renderer.check(sample_alert(now))
    return renderer
