"""The ``watcher`` command: the only package that prints; errors become messages here.

:mod:`watcher.cli.app` holds the group; each command module adds its commands to it when
imported (:mod:`watcher.cli.commands` imports them all) and imports what a command needs
only when that command runs. This file stays empty of imports so that :func:`run`, the
console script, holds the Ctrl-C handler before anything is imported.
"""

from __future__ import annotations

import gc
import os
import sys
import threading

# What a shell reports for a program ended by SIGINT (128 + 2): scripts can tell it apart.
INTERRUPTED = 130
# The cyclic garbage collector waits this long after start (see _collect_after_start).
START_UP_SECONDS = 2.0


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


def _collect_after_start() -> None:
    """No cyclic garbage collection while the process starts. Start-up makes only what lives
    as long as the process (modules, classes, the config), and the collector walking it over
    and over frees nothing: a seventh of a quick command's CPU (``watcher validate``: 0.47 s
    with it, 0.41 s without, median of 15 on a 2-core box). A command still running after
    START_UP_SECONDS (``run``, ``check``, ``worker``, the web view) gets the collector back,
    with what start-up made frozen out of its walks; a forked child gets it back at once."""
    gc.disable()
    os.register_at_fork(after_in_child=gc.enable)
    resume = threading.Timer(START_UP_SECONDS, _resume_collection)
    resume.daemon = True
    resume.start()


def _resume_collection() -> None:
    gc.freeze()
    gc.enable()


def run() -> None:
    """The ``watcher`` console script: the command, imports included, under one Ctrl-C
    handler, so an interrupt at any moment is one short line and exit 130."""
    _collect_after_start()
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
