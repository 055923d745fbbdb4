"""Which apprise plugins a process loads: only those its notifier URLs name, when that is known.

The first time anything asks apprise about a scheme, it imports every one of its ~130
plugin modules (about 110 ms of CPU): most of what a short command such as ``watcher
validate`` costs. A scheme's plugin lives in a module named after the service, not the
scheme (``mailtos://`` is in ``email``), so the map from scheme to plugin is learned from
one full load and kept in the user's cache, one file per apprise version. With it, a
config whose URLs all use known schemes loads just their modules, and everything after
that (parsing the URL, building the service, sending) is apprise's own public path.

Anything the map cannot answer takes the full load, as before: a URL apprise recognises by
its https address (``https://discord.com/api/webhooks/...``), an ``apprise_config`` file
(which may name any service), a cache that is missing, stale, unreadable or unwritable.
A process that loaded a few plugins and then needs another (a reload with a new notifier)
upgrades to the full load.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import apprise

log = logging.getLogger(__name__)

# apprise's registry of notification plugins, one per process (a singleton).
N_MGR: Any = apprise.NotificationManager()  # type: ignore[no-untyped-call]

_NATIVE = "apprise.plugins."
# Schemes this process registered by hand (the fast way); None once the full load is done.
_added: set[str] | None = set()


def load_plugins(urls: Iterable[str] | None) -> None:
    """Make apprise able to build a service for each of these URLs; ``None``: for any URL
    (an apprise_config file). Idempotent; cheap when every scheme is in the cached map."""
    if _added is not None:
        wanted = _schemes(urls)
        plugins = _cached_plugins(wanted) if wanted is not None else None
        if plugins is None:
            _load_everything()
        else:
            _add(plugins)
    # console:// registers itself on import, which must follow the loading above: a
    # registration on an unloaded apprise would load every plugin.
    from watcher.delivery import console  # noqa: F401


def _schemes(urls: Iterable[str] | None) -> set[str] | None:
    """The schemes of these URLs (our own ``console`` aside); None if one has none."""
    if urls is None:
        return None
    schemes = set()
    for url in urls:
        scheme, sep, _ = url.strip().partition("://")
        if not sep:
            return None
        schemes.add(scheme.lower())
    return schemes - {"console"}


def _cached_plugins(schemes: set[str]) -> dict[str, Any] | None:
    """Each scheme's plugin class, imported from the module the cache names; None if the
    cache lacks one (or names a module that no longer has it)."""
    assert _added is not None
    known = _read_cache()
    plugins: dict[str, Any] = {}
    for scheme in schemes - _added:
        where = known.get(scheme)
        if where is None:
            return None
        module, _, name = where.partition(":")
        try:
            plugin = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            return None
        plugins[scheme] = plugin
    return plugins


def _add(plugins: dict[str, Any]) -> None:
    assert _added is not None
    if not N_MGR:
        # Apprise loads every plugin at the first question unless something is loaded:
        # loading an empty directory of plugins is that something.
        with tempfile.TemporaryDirectory() as nothing:
            N_MGR.load_modules(path=nothing, name="watcher.no_plugins")
    for scheme, plugin in plugins.items():
        if scheme not in N_MGR:  # not already in as a sibling (mailto came with mailtos)
            before = set(N_MGR.schemas())
            N_MGR.add(plugin)
            _added.update(set(N_MGR.schemas()) - before)


def _load_everything() -> None:
    global _added
    assert _added is not None
    if _added:
        # The hand-registered ones come back from their own modules: no schema conflict.
        N_MGR.remove(*_added, unload=False)
        N_MGR.load_modules(force=True)
    else:
        N_MGR.load_modules()
    _added = None
    _write_cache()


# ---------------------------------------------------------------------------- the cache


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "watcher" / f"apprise-{apprise.__version__}-schemes.json"


def _stamp() -> int:
    """Changes when apprise's plugin directory gains or loses a module (a reinstall)."""
    return os.stat(Path(apprise.__file__).parent / "plugins").st_mtime_ns


def _read_cache() -> dict[str, str]:
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("stamp") != _stamp():
        return {}
    schemes = data.get("schemes")
    return schemes if isinstance(schemes, dict) else {}


def _write_cache() -> None:
    """The native schemes as the full load mapped them, written whole or not at all."""
    schemes = {
        scheme: f"{plugin.__module__}:{plugin.__name__}"
        for scheme in N_MGR.schemas()
        if (plugin := N_MGR[scheme]).__module__.startswith(_NATIVE)
    }
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, prefix=".schemes-", suffix=".tmp", delete=False
        ) as out:
            json.dump({"stamp": _stamp(), "schemes": schemes}, out, sort_keys=True)
        try:
            os.replace(out.name, path)
        finally:
            Path(out.name).unlink(missing_ok=True)
    except OSError as error:  # a read-only home: every start takes the full load
        log.debug("apprise scheme cache not written to %s: %s", path, error)
