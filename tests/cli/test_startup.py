"""Starting a command: only what it uses is imported, and Ctrl-C at any moment of it (the
imports included) ends it with one short line and exit 130, never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

WATCHER = [sys.executable, "-m", "watcher.cli"]
# Modules a command that does not need them must not import: each costs tens to hundreds of
# milliseconds at start-up.
HEAVY = ("sqlalchemy", "sqlmodel", "pydantic", "apprise", "trafilatura", "apscheduler", "httpx")

CONFIG = """\
database: sqlite:///{state}/watcher.db
feeds:
  - {{name: desk, url: "http://127.0.0.1:9/world.xml"}}
notifiers:
  screen: "console://"
rules:
  - {{name: ceasefire, keywords: [cease-fire], notify: [screen]}}
"""


def imported_by(*args: str) -> set[str]:
    """The top-level modules loaded once the command line is parsed and help printed."""
    probe = (
        "import sys\n"
        "from watcher.cli.commands import main\n"
        "try:\n"
        f"    main({list(args)!r}, prog_name='watcher')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("alerts", "--help")])
def test_help_and_version_import_nothing_heavy(args: tuple[str, ...]) -> None:
    loaded = imported_by(*args)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "watcher.yaml"
    path.write_text(CONFIG.format(state=tmp_path))
    return path


@pytest.mark.parametrize("delay", [0.5, 0.7, 0.9, 1.2])
def test_ctrl_c_at_any_moment_is_one_line_and_exit_130(config: Path, delay: float) -> None:
    """``validate`` imports pydantic, apprise and the templates: a second or so in which the
    interrupt lands somewhere in the imports or the work. (Not earlier than half a second:
    before that a loaded machine may still be starting the interpreter itself, which no
    program can answer for.)"""
    process = subprocess.Popen(
        [*WATCHER, "-c", str(config), "validate"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert "Traceback" not in err, err
    if process.returncode == 0 or ": OK" in out:
        return  # it finished before the interrupt came (or while the interpreter exited)
    # 130, or ended by the SIGINT itself (Python re-raises it when it exits after an
    # interrupt): a shell reports both as 130.
    assert process.returncode in (130, -signal.SIGINT), (process.returncode, err)
    assert err.strip() == "watcher: interrupted", err


def test_an_error_a_ctrl_c_caused_counts_as_the_ctrl_c() -> None:
    from watcher.cli import interrupted

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as inner:
            raise RuntimeError("Error calling __set_name__ on 'cached_property'") from inner
    except RuntimeError as wrapped:
        assert interrupted(wrapped)
    assert not interrupted(RuntimeError("a bug"))


@pytest.mark.parametrize("command", [("alerts", "--json"), ("feeds",), ("status", "--json")])
def test_quick_reads_load_no_sqlalchemy(config: Path, command: tuple[str, ...]) -> None:
    """``alerts``, ``feeds`` and ``status`` read a SQLite file with the standard library's
    ``sqlite3``: SQLAlchemy and SQLModel (more than half of their start) stay unloaded."""
    from watcher.storage.store import Store

    Store.open(f"sqlite:///{config.parent}/watcher.db").close()
    loaded = imported_by("-c", str(config), *command)
    assert "sqlite3" in loaded  # it did read the database
    heavy = loaded & {"sqlalchemy", "sqlmodel", "apprise"}
    assert not heavy, sorted(heavy)


def test_validate_loads_no_template_engine_without_user_templates(config: Path) -> None:
    """The built-in templates are the package's own: only a user's are tried (and jinja2
    imported) by ``validate``; a broken one is refused (tests/delivery/test_delivery_e2e)."""
    loaded = imported_by("-c", str(config), "validate")
    assert "apprise" in loaded  # it did check the notifiers
    assert "jinja2" not in loaded


def test_the_collector_waits_out_start_up_and_then_comes_back() -> None:
    """Off while the command starts (its objects live as long as it does), back after
    START_UP_SECONDS for a command that keeps running, and at once in a forked child."""
    probe = (
        "import gc, os, sys, time\n"
        "from watcher import cli\n"
        "cli.START_UP_SECONDS = 0.3\n"
        "cli._collect_after_start()\n"
        "assert not gc.isenabled(), 'on during start-up'\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0 if gc.isenabled() else 3)\n"
        "assert os.waitpid(pid, 0)[1] == 0, 'a forked child had no collector'\n"
        "deadline = time.monotonic() + 10\n"
        "while not gc.isenabled() and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "assert gc.isenabled(), 'still off after start-up'\n"
        "assert gc.get_freeze_count() > 0\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=30)
