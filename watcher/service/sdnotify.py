"""The systemd notify protocol, so ``watcher run`` can be a ``Type=notify`` service.

What systemd expects (``sd_notify(3)``, ``sd_watchdog_enabled(3)``, ``systemd.service(5)``):

- For a ``Type=notify`` unit systemd sets ``$NOTIFY_SOCKET``: a filesystem path to an
  ``AF_UNIX`` ``SOCK_DGRAM`` socket, or, when it starts with ``@``, a socket in the abstract
  namespace (the ``@`` stands for a leading NUL byte; there is no file). Newer systemd can
  also give a ``vsock:`` address (for virtual machines); this module does not speak it.
- A notification is one datagram of newline-separated ``VARIABLE=value`` lines. There is no
  reply: a datagram is either queued on systemd's socket or lost.
- systemd learns who sent a datagram from the credentials the kernel attaches to it, and by
  default (``NotifyAccess=main``) it only listens to the main process: notifications must
  come from the process systemd started, which ``watcher run`` is.
- ``READY=1``: start-up is finished (``systemctl start`` returns, dependent units start).
  ``STATUS=...``: one line shown by ``systemctl status``. ``STOPPING=1``: shutdown has begun.
  ``RELOADING=1``: a reload has begun, and ``READY=1`` is sent again when it is done;
  ``Type=notify-reload`` (systemd 253+) also requires ``MONOTONIC_USEC=``, the
  ``CLOCK_MONOTONIC`` time in microseconds, in the same datagram (older versions ignore it).
- ``WATCHDOG=1``: a keep-alive. With ``WatchdogSec=`` systemd passes ``$WATCHDOG_USEC`` and
  kills the service (SIGABRT by default), which ``Restart=`` then restarts, if no ping arrives
  within that time. ``$WATCHDOG_PID``, when set, names the one process expected to ping.
  systemd recommends pinging at half the interval.

Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op. A failed send is logged and
never raised: the daemon's work matters more than its reports about it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

USEC_PER_SECOND = 1_000_000


class SystemdNotifier:
    """Sends notifications to the systemd socket at ``address``; does nothing without one."""

    def __init__(self, address: bytes | None) -> None:
        self.address = address
        self._failing = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        env = os.environ if environ is None else environ
        return cls(socket_address(env.get("NOTIFY_SOCKET", "")))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *_status(status))

    def status(self, text: str) -> bool:
        return self.send(*_status(text))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *_status(status))

    def reloading(self, status: str | None = None) -> bool:
        """Say a reload has begun; send :meth:`ready` when it is done."""
        return self.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}", *_status(status))

    def send(self, *assignments: str) -> bool:
        """Send ``VARIABLE=value`` lines as one datagram; True if the kernel queued it."""
        if self.address is None or not assignments:
            return False
        message = "\n".join(assignments).encode()
        try:
            _send_datagram(self.address, message)
        except OSError as exc:
            self._report_failure(assignments[0], exc)
            return False
        self._failing = False
        return True

    def _report_failure(self, first: str, exc: OSError) -> None:
        # Warn once per run of failures: a vanished socket would otherwise log a line at every
        # watchdog ping for as long as the daemon lives.
        level = logging.DEBUG if self._failing else logging.WARNING
        self._failing = True
        log.log(level, "systemd notification %s not sent to %r: %s", first, self.address, exc)


def socket_address(value: str) -> bytes | None:
    """The ``sendto`` address for a ``$NOTIFY_SOCKET`` value; None when there is none to use."""
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + os.fsencode(value[1:])
    if value.startswith("/"):
        return os.fsencode(value)
    # libsystemd refuses relative paths too: resolving one against our working directory
    # could reach some other socket.
    log.warning("NOTIFY_SOCKET=%r is not a path or an abstract socket: not notifying", value)
    return None


def watchdog_interval(
    environ: Mapping[str, str] | None = None, pid: int | None = None
) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``$WATCHDOG_USEC``), or None when systemd
    expects no pings from this process (``pid``, by default ours)."""
    env = os.environ if environ is None else environ
    raw = env.get("WATCHDOG_USEC")
    if raw is None:
        return None
    usec = _positive_int(raw)
    if usec is None:
        log.warning("WATCHDOG_USEC=%r is not a positive number: no watchdog pings", raw)
        return None
    owner = env.get("WATCHDOG_PID")
    # The variables are inherited by child processes; only the named process may ping.
    if owner is not None and _positive_int(owner) != (os.getpid() if pid is None else pid):
        return None
    return usec / USEC_PER_SECOND / 2


async def watchdog_pinger(
    notifier: SystemdNotifier, interval: float, is_alive: Callable[[], bool]
) -> None:
    """Send ``WATCHDOG=1`` every ``interval`` seconds while ``is_alive()`` holds; runs until
    cancelled.

    The pings are sent by the event loop itself, so a loop blocked by a stuck call sends none
    and systemd restarts the service; ``is_alive`` covers what the loop cannot see, such as a
    scheduler that stopped (a check that raises counts as false).
    """
    withheld = False
    while True:
        alive = _holds(is_alive)
        if alive:
            notifier.watchdog()
        elif not withheld:
            log.warning("the daemon is not alive: no more watchdog pings, systemd will restart it")
        withheld = not alive
        await asyncio.sleep(interval)


async def status_reporter(
    notifier: SystemdNotifier, interval: float, describe: Callable[[], str]
) -> None:
    """Send ``STATUS=describe()`` every ``interval`` seconds; runs until cancelled."""
    while True:
        await asyncio.sleep(interval)
        try:
            text = describe()
        except Exception as exc:  # a status line must never stop the daemon
            log.warning("status for systemd not updated: %s", exc)
            continue
        notifier.status(text)


def monotonic_usec() -> int:
    """``CLOCK_MONOTONIC`` in microseconds, the clock systemd reads ``MONOTONIC_USEC`` on."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def _send_datagram(address: bytes, message: bytes) -> None:
    # A fresh socket per message keeps nothing open between notifications. Non-blocking: if
    # systemd's queue is full, the datagram is dropped (and logged) instead of stalling the
    # event loop that every task of the daemon shares.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.sendto(message, address)


def _status(text: str | None) -> tuple[str, ...]:
    # Each line of a notification is one assignment, so a status must be one line.
    return (f"STATUS={' '.join(text.splitlines())}",) if text else ()


def _positive_int(text: str) -> int | None:
    # Digits only, as libsystemd parses these: int() would also take " 5", "+5" and "5_000".
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value > 0 else None


def _holds(is_alive: Callable[[], bool]) -> bool:
    try:
        return is_alive()
    except Exception:
        log.exception("liveness check failed: counted as not alive")
        return False
