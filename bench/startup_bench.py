"""CPU cost of starting each everyday command, next to a bare ``python -c "import click"``.

Every command runs as a process of its own (as a user or a script runs it), several times;
the figure is the median CPU (user + system) of the child, which the machine's load does
not inflate the way wall time would. The config is a small one with two feeds and two
notifiers; the database is made once by a ``watcher check`` against nothing reachable, so
it holds two feeds and no articles.

Targets: ``--help`` and ``--version`` at most 3x the bare click import; ``validate``,
``alerts --json`` and ``feeds`` under 0.4 s CPU each.

    python bench/startup_bench.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIG = """\
database: sqlite:///{state}/watcher.db
feeds:
  - {{name: desk-world, url: "http://127.0.0.1:9/world.xml"}}
  - {{name: desk-region, url: "http://127.0.0.1:9/region.xml", tags: [syria]}}
notifiers:
  screen: "console://"
  hook: "json://127.0.0.1:9/hook"
rules:
  - {{name: ceasefire, keywords: [cease-fire, truce], events: [new, changed], notify: [screen]}}
  - {{name: edits, events: [changed], notify: [hook]}}
"""

COMMANDS = (
    ("--help",),
    ("--version",),
    ("validate",),
    ("alerts", "--json"),
    ("feeds",),
    ("status", "--json"),
)
TARGET_RATIO = 3.0  # --help / --version against the bare click import
TARGET_SECONDS = 0.4  # validate, alerts --json, feeds


def child_cpu(argv: list[str], env: dict[str, str]) -> float:
    """CPU seconds (user + system) one child process used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median_cpu(argv: list[str], env: dict[str, str], runs: int) -> float:
    child_cpu(argv, env)  # warm the page cache and the .pyc files
    return statistics.median(child_cpu(argv, env) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    watcher = [sys.executable, "-m", "watcher.cli"]
    # Bytecode caches as a user has them (any value of this variable, "0" too, turns them off).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as state:
        config = Path(state) / "watcher.yaml"
        config.write_text(CONFIG.format(state=state))
        subprocess.run(
            [*watcher, "-q", "-c", str(config), "check"], env=env, capture_output=True, check=False
        )
        bare = median_cpu([sys.executable, "-c", "import click"], env, args.runs)
        print(f"bare `python -c 'import click'`: {bare * 1000:7.1f} ms CPU (median of {args.runs})")
        for command in COMMANDS:
            argv = [*watcher, "-c", str(config), *command]
            cpu = median_cpu(argv, env, args.runs)
            verdict = _verdict(command, cpu, bare)
            shown = " ".join(command)
            print(f"watcher {shown:<14} {cpu * 1000:7.1f} ms CPU  {cpu / bare:5.1f}x  {verdict}")


def _verdict(command: tuple[str, ...], cpu: float, bare: float) -> str:
    if command[0] in ("--help", "--version"):
        return "PASS" if cpu <= TARGET_RATIO * bare else f"over {TARGET_RATIO:g}x"
    if command[0] in ("validate", "alerts", "feeds"):
        return "PASS" if cpu < TARGET_SECONDS else f"over {TARGET_SECONDS:g} s"
    return ""


if __name__ == "__main__":
    main()
