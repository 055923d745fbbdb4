"""Real receivers on loopback for delivery tests: an SMTP server (aiosmtpd) and a webhook
endpoint for apprise's ``json://``, both able to go down and come back on the same port."""

from __future__ import annotations

import email
import json
import re
import socket
import threading
from email import policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from support.server import Closing, LoopbackServer, Reply, Request


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpReceiver(Closing):
    """An SMTP server collecting every message it accepts, parsed."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None
        self.start()

    def url(self, to: str = "desk@example.org", **params: str) -> str:
        query = "&".join(
            f"{k}={v}" for k, v in {"to": to, "from": "watcher@example.org", **params}.items()
        )
        return f"mailto://127.0.0.1:{self.port}?{query}"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    close = stop

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
        return "250 OK"


def parts(message: EmailMessage) -> dict[str, str]:
    """The text/plain and text/html parts of a message, decoded."""
    found: dict[str, str] = {}
    for part in message.walk():
        if part.get_content_type() in ("text/plain", "text/html"):
            content = part.get_content()
            assert isinstance(content, str)
            found[part.get_content_type()] = content
    return found


class Webhook(Closing):
    """A json:// endpoint: records each notification; ``status`` other than 200 makes it fail
    that way, ``stop()`` makes connections refused until ``start()``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[dict[str, Any]] = []
        self.refused_while_down = 0
        self.status = 200
        self._server: LoopbackServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        self._server = LoopbackServer(port=self.port)
        self._server.route("/hook", self._receive)

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    close = stop

    def titles(self) -> list[str]:
        return [str(body.get("title", "")) for body in self.received]

    def alert_ids(self) -> list[int]:
        """The alert ids in every message received (a digest holds several), repeats kept."""
        return [
            int(found)
            for body in list(self.received)
            for found in re.findall(r"\balert (\d+)", str(body.get("message", "")))
        ]

    def _receive(self, request: Request) -> Reply:
        if self.status != 200:
            return Reply(status=self.status, body="unavailable")
        self.received.append(json.loads(request.body))
        return Reply(status=200, body="ok")
