"""Where a read-only command's start-up CPU goes, part by part (what ``startup_bench.py``
measures whole): the interpreter with click and the command modules, loading the config
(pydantic), the reader's modules (``sqlite3``, the records), and opening the SQLite file with
two queries (``alerts``, ``feed_states``), with the garbage collector held off as
``watcher.cli.run`` holds it. Each run is a fresh process, as a command is.

    python bench/startup_parts_bench.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
# The same small config (and so the same database) as startup_bench.py.
from startup_bench import CONFIG

PROBE = """\
import json, resource, sys

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

marks = {"interpreter": cpu()}
import gc
gc.disable()
import click
from watcher.cli.commands import main
marks["click and the commands"] = cpu()
from watcher.config.loading import load_config
config = load_config(__import__("pathlib").Path(sys.argv[1]))
marks["config (pydantic, yaml)"] = cpu()
from watcher.storage.reader import Reader
marks["reader modules (sqlite3, records)"] = cpu()
reader = Reader.open(config.database_url())
reader.alerts()
reader.feed_states()
reader.close()
marks["open, check schema, 2 queries"] = cpu()
print(json.dumps(marks))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as state:
        config = Path(state) / "watcher.yaml"
        config.write_text(CONFIG.format(state=state))
        watcher = [sys.executable, "-m", "watcher.cli", "-q", "-c", str(config), "check"]
        subprocess.run(watcher, env=env, capture_output=True, check=False)
        probe = [sys.executable, "-c", PROBE, str(config)]
        subprocess.run(probe, env=env, capture_output=True, check=True)  # warm the caches
        runs = [_parts(probe, env) for _ in range(args.runs)]
    print(f"part of a read command's start (median CPU of {args.runs} fresh processes):")
    for name in runs[0]:
        print(f"  {name:<32} {statistics.median(run[name] for run in runs) * 1000:7.1f} ms")
    total = statistics.median(sum(run.values()) for run in runs)
    print(f"  {'total':<32} {total * 1000:7.1f} ms")


def _parts(probe: list[str], env: dict[str, str]) -> dict[str, float]:
    """Each part's CPU: the difference between one mark and the one before."""
    done = subprocess.run(probe, env=env, capture_output=True, text=True, check=True)
    marks: dict[str, float] = json.loads(done.stdout)
    names, times = list(marks), list(marks.values())
    return {names[0]: times[0]} | {names[i]: times[i] - times[i - 1] for i in range(1, len(names))}


if __name__ == "__main__":
    main()
