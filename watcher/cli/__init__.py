"""The ``watcher`` command: the only package that prints; errors become messages here."""

from __future__ import annotations

from watcher.cli.app import main

__all__ = ["main"]
