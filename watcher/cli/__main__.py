"""``python -m watcher.cli``: the same as the ``watcher`` command."""

from __future__ import annotations

from watcher.cli import run

run()
