"""The ``watcher`` command: the only package that prints; errors become messages here.

:mod:`watcher.cli.app` holds the group; each command module adds its commands to it when
imported (:mod:`watcher.cli.commands` imports them all) and imports what a command needs
only when that command runs. This file stays empty of imports so that :func:`run`, the
console script, holds the Ctrl-C handler before anything is imported.
"""

from __future__ import annotations

import sys

# What a shell reports for a program ended by SIGINT (128 + 2): scripts can tell it apart.
INTERRUPTED = 130


def run() -> None:
    """The ``watcher`` console script: the command, imports included, under one Ctrl-C
    handler, so an interrupt at any moment is one short line and exit 130."""
    try:
        from watcher.cli.commands import main

        main(prog_name="watcher")
    except KeyboardInterrupt:
        sys.stderr.write("\nwatcher: interrupted\n")
        sys.exit(INTERRUPTED)
