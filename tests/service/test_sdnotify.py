"""The systemd notify protocol on real sockets, the daemon under a fake systemd, the unit file.

The "systemd" here is an AF_UNIX datagram socket the test binds and reads, as PID 1 does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.newsroom import Newsroom, make_story
from support.paths import ROOT
from support.server import LoopbackServer
from watcher.service.sdnotify import SystemdNotifier, watchdog_interval, watchdog_pinger

UNIT = ROOT / "systemd" / "watcher.service"


class FakeSystemd:
    """The receiving end of ``$NOTIFY_SOCKET``: one datagram is one notification."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env_value = env_value

    def receive(self, timeout: float = 5.0) -> list[str]:
        """The next notification's lines; fails the test if none arrives in time."""
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode().split("\n")

    def receive_until(self, line: str, timeout: float) -> list[list[str]]:
        """Every notification up to and including the first one that has ``line``."""
        deadline = time.monotonic() + timeout
        seen: list[list[str]] = []
        while not seen or line not in seen[-1]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {line} within {timeout} s; got {seen}")
            seen.append(self.receive(left))
        return seen

    def pending(self) -> list[list[str]]:
        """Every notification already queued, without waiting."""
        self.sock.setblocking(False)
        seen = []
        while True:
            try:
                seen.append(self.sock.recv(4096).decode().split("\n"))
            except BlockingIOError:
                return seen


@pytest.fixture
def systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSystemd]:
    """A notify socket in the file system, named by $NOTIFY_SOCKET."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield FakeSystemd(sock, str(path))


# ------------------------------------------------------------------------------ the protocol


def test_each_notification_is_one_datagram(systemd: FakeSystemd) -> None:
    notifier = SystemdNotifier.from_environment()
    assert notifier.enabled
    assert notifier.ready("3 feeds, 10 articles")
    assert systemd.receive() == ["READY=1", "STATUS=3 feeds, 10 articles"]
    assert notifier.status("polling")
    assert systemd.receive() == ["STATUS=polling"]
    assert notifier.watchdog()
    assert systemd.receive() == ["WATCHDOG=1"]
    assert notifier.stopping()
    assert systemd.receive() == ["STOPPING=1"]


def test_a_status_stays_on_one_line(systemd: FakeSystemd) -> None:
    SystemdNotifier.from_environment().status("first line\nsecond line")
    assert systemd.receive() == ["STATUS=first line second line"]


def test_reloading_carries_the_monotonic_clock(systemd: FakeSystemd) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    SystemdNotifier.from_environment().reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    reloading, monotonic = systemd.receive()
    assert reloading == "RELOADING=1"
    name, value = monotonic.split("=")
    assert name == "MONOTONIC_USEC" and before <= int(value) <= after


def test_an_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"watcher-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        monkeypatch.setenv("NOTIFY_SOCKET", f"@{name}")
        assert SystemdNotifier.from_environment().ready()
        sock.settimeout(5)
        assert sock.recv(4096) == b"READY=1"


def test_nothing_is_sent_outside_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = SystemdNotifier.from_environment()
    assert not notifier.enabled
    assert not notifier.ready("x") and not notifier.watchdog() and not notifier.stopping()


def test_a_relative_path_is_refused(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Earlier in-process CLI tests may have left the root logger at ERROR: ask for warnings.
    caplog.set_level(logging.WARNING, logger="watcher.service.sdnotify")
    monkeypatch.setenv("NOTIFY_SOCKET", "notify.sock")
    assert not SystemdNotifier.from_environment().enabled
    assert "NOTIFY_SOCKET='notify.sock'" in caplog.text


def test_a_vanished_socket_is_logged_once_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gone"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
    path.unlink()
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    notifier = SystemdNotifier.from_environment()
    caplog.set_level(logging.DEBUG, logger="watcher.service.sdnotify")
    assert not notifier.ready()
    assert not notifier.watchdog()
    levels = [record.levelno for record in caplog.records]
    assert levels == [logging.WARNING, logging.DEBUG], caplog.text
    assert "READY=1 not sent" in caplog.records[0].getMessage()


def test_a_socket_that_is_not_read_does_not_block(systemd: FakeSystemd) -> None:
    # A full queue on systemd's side drops notifications instead of stalling the event loop.
    notifier = SystemdNotifier.from_environment()
    started = time.monotonic()
    sent = [notifier.watchdog() for _ in range(5000)]
    assert time.monotonic() - started < 5
    assert not all(sent)


# ---------------------------------------------------------------------------- the watchdog


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "2000000"}, 1.0),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "4242"}, 1.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "4243"}, None),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "nobody"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "2s"}, None),
        ({"WATCHDOG_USEC": ""}, None),
    ],
)
def test_watchdog_interval_is_half_the_timeout(
    environ: dict[str, str], interval: float | None
) -> None:
    assert watchdog_interval(environ, pid=4242) == interval


def test_watchdog_interval_reads_the_environment_and_our_pid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "500000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 0.25
    monkeypatch.setenv("WATCHDOG_PID", str(os.getppid()))
    assert watchdog_interval() is None


def test_the_pinger_stops_pinging_when_not_alive(systemd: FakeSystemd) -> None:
    checks = iter([True, True, True, False, True, False])

    def alive() -> bool:
        # True three times, a blip, once more, then dead for good.
        return next(checks, False)

    async def ping_for_a_while() -> None:
        task = asyncio.create_task(watchdog_pinger(SystemdNotifier.from_environment(), 0.01, alive))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(ping_for_a_while())
    assert systemd.pending() == [["WATCHDOG=1"]] * 4


def test_a_failing_liveness_check_counts_as_dead(systemd: FakeSystemd) -> None:
    def broken() -> bool:
        raise RuntimeError("scheduler gone")

    async def ping_once() -> None:
        task = asyncio.create_task(
            watchdog_pinger(SystemdNotifier.from_environment(), 0.01, broken)
        )
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(ping_once())
    assert systemd.pending() == []


# ------------------------------------------------------------------ the daemon under systemd


def test_run_notifies_ready_pings_the_watchdog_and_says_stopping(
    loopback: LoopbackServer, tmp_path: Path, systemd: FakeSystemd
) -> None:
    room = Newsroom(loopback).attach()
    room.add(make_story("talks", "Talks resume", seed=1))
    config = tmp_path / "watcher.yaml"
    config.write_text(
        f"""
database: "sqlite:///{tmp_path / "watcher.db"}"
allow_private_networks: true
defaults: {{interval: 1s, recheck: [{{until: 1h, every: 1s}}]}}
feeds: [{{name: loop, url: "{room.url("/rss.xml")}"}}]
"""
    )
    env = {**os.environ, "NOTIFY_SOCKET": systemd.env_value, "WATCHDOG_USEC": "2000000"}
    env.pop("WATCHDOG_PID", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "watcher.cli", "-c", str(config), "run"],
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "PYTHONUNBUFFERED": "1"},
    )
    try:
        ready = systemd.receive(timeout=60)  # start-up: imports, schema; slow on a busy machine
        assert ready[0] == "READY=1"
        assert re.fullmatch(r"STATUS=1 feeds, \d+ articles, \d+ versions, \d+ alerts", ready[1])
        started = time.monotonic()
        first, second = systemd.receive(timeout=5), systemd.receive(timeout=5)
        assert first == second == ["WATCHDOG=1"]
        assert time.monotonic() - started > 0.5  # one ping a second, not a burst
        process.send_signal(signal.SIGTERM)
        systemd.receive_until("STOPPING=1", timeout=10)
        _, stderr = process.communicate(timeout=40)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "cancelled" not in stderr  # the pinger is not a job the drain waits for


# -------------------------------------------------------------------------- the unit file


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_the_unit_file_verifies(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists; /usr/local/bin/watcher does not here.
    text = UNIT.read_text()
    assert "ExecStart=/usr/local/bin/watcher " in text
    unit = tmp_path / "watcher.service"
    unit.write_text(
        text.replace("ExecStart=/usr/local/bin/watcher ", f"ExecStart={sys.executable} ")
    )
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "watcher.service" not in done.stderr, done.stderr
