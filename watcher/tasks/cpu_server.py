"""Imported only by the extraction pool's fork server (see :mod:`watcher.tasks.cpu`), once,
at its start: the extractor is loaded there so every worker forked from it starts warm.

The fork server ignores SIGTERM, as the workers do: under systemd the stop signal reaches
every process of the service, and a fork server that died would break the pool (the workers
report through it) in the middle of the drain. It leaves when the watcher process is gone
(killed with -9 too): it watches its parent itself, having been seen to outlive it, and its
workers, watching theirs, follow it.
"""

import os
import signal
import threading

from watcher.tasks.cpu import PARENT_VARIABLE, leave_with_parent

signal.signal(signal.SIGTERM, signal.SIG_IGN)
# The watcher process's pid from the environment, not getppid(): a watcher killed while this
# server was still importing has already left it to another parent.
_WATCHER = int(os.environ.get(PARENT_VARIABLE, os.getppid()))
threading.Thread(target=leave_with_parent, args=(_WATCHER,), daemon=True).start()
