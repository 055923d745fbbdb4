"""The ``live_pages`` section: when an article that keeps changing counts as a live page
(a live blog, a rotating body), and how its alerts are bundled (see
:mod:`watcher.pipeline.livepages`)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from watcher.config.values import Duration, Model

# The store keeps this many recent check outcomes per article: the longest window possible.
MAX_CHECKS = 32


class LivePagesSettings(Model):
    """An article whose text changed on at least ``changes`` of its last ``checks`` checks
    is a live page; its alerts go out as one digest per article each ``digest`` period."""

    # false: no article is ever a live page (every alert is its own message).
    enabled: bool = True
    changes: int = Field(default=4, ge=1)
    checks: int = Field(default=6, ge=1, le=MAX_CHECKS)
    digest: Duration = timedelta(hours=1)

    @model_validator(mode="after")
    def _changes_fit(self) -> LivePagesSettings:
        if self.changes > self.checks:
            raise ValueError(
                f"changes ({self.changes}) cannot be more than checks ({self.checks})"
            )
        return self
