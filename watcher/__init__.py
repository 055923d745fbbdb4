"""watcher: watch news feeds, keep every version of every article, alert on edits."""

from __future__ import annotations

__version__ = "0.1.0"
