"""The ``watcher`` command: the only package that prints; errors become messages here.

:mod:`watcher.cli.app` holds the group; each command module adds its commands to it when
imported (:mod:`watcher.cli.commands` imports them all) and imports what a command needs
only when that command runs. This file stays empty of imports so that :func:`run`, the
console script, holds the Ctrl-C handler before anything is imported.
"""

from __future__ import annotations

import gc
import sys

# What a shell reports for a program ended by SIGINT (128 + 2): scripts can tell it apart.
INTERRUPTED = 130


def interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is a Ctrl-C, or an error that a Ctrl-C caused: one landing in a class
    body being built comes back as a RuntimeError ("Error calling __set_name__") around it."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def run() -> None:
    """The ``watcher`` console script: the command, imports included, under one Ctrl-C
    handler, so an interrupt at any moment is one short line and exit 130."""
    try:
        from watcher.cli.commands import main

        main(prog_name="watcher")
    except BaseException as exc:
        if not interrupted(exc):
            raise
        sys.stderr.write("\nwatcher: interrupted\n")
        sys.exit(INTERRUPTED)
    finally:
        # The interpreter's last collections at exit walk every object the imports made
        # (SQLAlchemy, pydantic, apprise: ~0.1 s of CPU on a 2-core box, a fifth of a read
        # command). Frozen, they are skipped: the process ends, the OS takes the memory back,
        # and atexit handlers (logging, weakref.finalize, multiprocessing) still run.
        gc.freeze()
