"""Imported only by the extraction pool's fork server (see :mod:`watcher.tasks.cpu`), once,
at its start: the extractor is loaded there so every worker forked from it starts warm.

The fork server ignores SIGTERM, as the workers do: under systemd the stop signal reaches
every process of the service, and a fork server that died would break the pool (the workers
report through it) in the middle of the drain. It still leaves when watcher does: its pipe to
the watcher process closes.
"""

import signal

import watcher.pipeline.extract
import watcher.tasks.cpu

signal.signal(signal.SIGTERM, signal.SIG_IGN)
assert watcher.pipeline.extract.extract_article is not None
