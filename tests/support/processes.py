"""Watcher commands as processes of their own (or in this process, where that proves as
much): started, waited for, stopped with SIGTERM, never left running after a test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from watcher.cli.commands import main

WATCHER = [sys.executable, "-m", "watcher.cli"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def watcher(config: Path, *args: str, timeout: float = 60) -> Outcome:
    """Run a watcher command to completion in a process of its own."""
    done = subprocess.run(
        [*WATCHER, "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def cli(config: Path, *args: str) -> Outcome:
    """The same command in this process: saves the interpreter's second of start-up where a
    process of its own proves nothing more (no kill, no lock held by this process)."""
    result = CliRunner().invoke(main, ["-c", str(config), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # what would have been a traceback
    return Outcome(result.exit_code, result.stdout, result.stderr)


def cli_stdout(config: Path, *args: str) -> str:
    """:func:`cli` for a command that must succeed: its standard output."""
    outcome = cli(config, *args)
    assert outcome.code == 0, outcome.stderr
    return outcome.stdout


def start(config: Path, command: str, log: Path) -> subprocess.Popen[bytes]:
    """Start a watcher command in the background, its stderr going to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as stderr:
        return subprocess.Popen(
            [*WATCHER, "-c", str(config), command],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=ENV,
        )


def stop(process: subprocess.Popen[bytes], timeout: float = 40) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=timeout)


@contextmanager
def running(config: Path, command: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A watcher command for the block; killed if the block ends (or fails, or times out)
    while it still runs, so no daemon outlives the test."""
    process = start(config, command, log)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def daemon(config: Path, log: Path) -> AbstractContextManager[subprocess.Popen[bytes]]:
    return running(config, "run", log)


def wait_for(condition: Callable[[], bool], seconds: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")
