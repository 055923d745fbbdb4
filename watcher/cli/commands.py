"""The whole command: the group of :mod:`watcher.cli.app` with every command module's
commands added (each adds its own when imported)."""

from __future__ import annotations

from watcher.cli import configuring, demo, reading, running, worker
from watcher.cli.app import main

__all__ = ["configuring", "demo", "main", "reading", "running", "worker"]
