"""What a worker's jobs share: the task :class:`~watcher.tasks.Context`, the Procrastinate app
and the worker's own counts (``watcher status`` shows them)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import procrastinate
from procrastinate import exceptions as queue_errors

from watcher.errors import StoreError
from watcher.tasks import Context

log = logging.getLogger(__name__)

CONTEXT_KEY = "watcher"


@dataclass
class Runtime:
    ctx: Context
    app: procrastinate.App
    worker_id: str
    processed: int = 0
    failed: int = 0

    @asynccontextmanager
    async def job(self) -> AsyncIterator[None]:
        """Count one job. A database failure is the outage the worker logs once; anything
        else is a bug, logged with its job."""
        try:
            yield
        except (StoreError, queue_errors.ConnectorException):  # the store's, or the queue's
            self.failed += 1
            raise
        except Exception:
            self.failed += 1
            log.exception("job failed")
            raise
        finally:
            self.processed += 1


def runtime_of(context: procrastinate.JobContext) -> Runtime:
    runtime: Any = context.additional_context[CONTEXT_KEY]
    assert isinstance(runtime, Runtime)
    return runtime
