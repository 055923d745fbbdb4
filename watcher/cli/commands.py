"""The whole command: the group of :mod:`watcher.cli.app` with every command module's
commands added (each adds its own when imported)."""

from __future__ import annotations

from watcher.cli import (
    archive,
    articles,
    configuring,
    demo,
    discovering,
    moving,
    outbox,
    reading,
    running,
    web,
    worker,
)
from watcher.cli.app import main

__all__ = [
    "archive",
    "articles",
    "configuring",
    "demo",
    "discovering",
    "main",
    "moving",
    "outbox",
    "reading",
    "running",
    "web",
    "worker",
]
