"""A real Matrix homeserver (Synapse) on 127.0.0.1 for tests, with a room to post alerts to.

Usage::

    with synapse_server(tmp_path) as matrix:
        apprise_object.add(matrix.apprise_url)   # matrix://bot:PASSWORD@127.0.0.1:PORT/%23newsdesk
        ...
        assert matrix.messages()[-1]["body"] == "..."

Synapse runs from its own venv (``.ci/synapse`` makes one and prints its python): the path of
that python comes from ``WATCHER_TEST_SYNAPSE_PYTHON``, and the tests that need the server are
skipped when it is unset or does not have Synapse. The server listens on 127.0.0.1 only, on a
free port, with SQLite, no TLS and no federation; its files live in ``workdir``. Two users are
registered through the shared-secret admin API: ``bot`` (what apprise logs in as) and
``reader`` (who creates the public room ``#newsdesk:<server_name>`` and reads it back). On
exit the server gets SIGTERM, then SIGKILL if it lingers; it never outlives the ``with``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

__all__ = ["PYTHON_ENV", "SynapseError", "SynapseServer", "synapse_server"]

PYTHON_ENV = "WATCHER_TEST_SYNAPSE_PYTHON"
_SERVER_MODULE = "synapse.app.homeserver"

SERVER_NAME = "localhost"
ROOM_NAME = "newsdesk"
BOT_USER = "bot"
READER_USER = "reader"

# Generous: a cold start on a 2-core machine (first SQLite schema set-up) takes a few seconds.
START_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0
HTTP_TIMEOUT = 15.0

# Rates high enough that no test ever meets a limit, yet still valid Synapse settings.
_UNLIMITED = {"per_second": 1000, "burst_count": 1000}


class SynapseError(RuntimeError):
    """The homeserver did not start, or refused a set-up request."""


@dataclass(frozen=True)
class SynapseServer:
    """A running homeserver with a room ``room_alias`` that ``bot`` may post to."""

    base_url: str
    port: int
    server_name: str
    room_id: str
    room_alias: str
    bot_user: str
    bot_password: str
    reader_user: str
    reader_token: str
    log_path: Path

    @property
    def apprise_url(self) -> str:
        """apprise's Matrix URL for the bot and the room, over plain HTTP (``matrix://``).

        ``#`` would start a URL fragment, so the alias is written ``%23newsdesk``; apprise adds
        the ``:server_name`` part from the server's login answer.
        """
        user = quote(self.bot_user, safe="")
        password = quote(self.bot_password, safe="")
        room = quote("#" + self.room_alias.removeprefix("#").split(":", 1)[0], safe="")
        return f"matrix://{user}:{password}@127.0.0.1:{self.port}/{room}"

    def messages(self, limit: int = 100) -> list[dict[str, Any]]:
        """The content of the room's last ``limit`` m.room.message events, oldest first."""
        with _client(self.base_url, self.reader_token) as client:
            reply = client.get(
                f"/_matrix/client/v3/rooms/{quote(self.room_id, safe='')}/messages",
                params={"dir": "b", "limit": str(limit)},
            )
        events = _json(reply, "read the room's messages")["chunk"]
        return [
            dict(event.get("content", {}))
            for event in reversed(events)
            if event.get("type") == "m.room.message"
        ]

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)


@contextmanager
def synapse_server(workdir: Path) -> Iterator[SynapseServer]:
    """Start Synapse with its files in ``workdir``; skip the test when it is not installed."""
    python = _synapse_python()
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    shared_secret = secrets.token_hex(16)
    config_path = workdir / "homeserver.yaml"
    config_path.write_text(json.dumps(_config(workdir, port, shared_secret), indent=2) + "\n")
    log_path = workdir / "homeserver.log"

    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [python, "-m", _SERVER_MODULE, "-c", str(config_path)],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_server_env(),
        )
    try:
        _wait_until_up(process, base_url, log_path)
        bot_password = secrets.token_urlsafe(12)
        reader_password = secrets.token_urlsafe(12)
        with _client(base_url) as client:
            _register(client, shared_secret, BOT_USER, bot_password)
            reader_token = _register(client, shared_secret, READER_USER, reader_password)
            bot_token = _login(client, BOT_USER, bot_password)
            room_id = _create_room(client, reader_token)
            room_alias = f"#{ROOM_NAME}:{SERVER_NAME}"
            _join(client, bot_token, room_alias)
            # Log the set-up session out, so apprise's own login is the bot's only device.
            _json(
                client.post("/_matrix/client/v3/logout", headers=_bearer(bot_token), json={}),
                "log the bot's set-up session out",
            )
        yield SynapseServer(
            base_url=base_url,
            port=port,
            server_name=SERVER_NAME,
            room_id=room_id,
            room_alias=room_alias,
            bot_user=BOT_USER,
            bot_password=bot_password,
            reader_user=READER_USER,
            reader_token=reader_token,
            log_path=log_path,
        )
    finally:
        _stop(process)


@functools.cache
def _has_synapse(python: str) -> bool:
    check = f"import importlib.util as u; raise SystemExit(not u.find_spec({_SERVER_MODULE!r}))"
    try:
        probe = subprocess.run(
            [python, "-c", check],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _synapse_python() -> str:
    python = os.environ.get(PYTHON_ENV, "").strip()
    if not python:
        pytest.skip(f"{PYTHON_ENV} is not set (run .ci/synapse and point it at the python)")
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        pytest.skip(f"{PYTHON_ENV}={python} is not an executable file")
    if not _has_synapse(python):
        pytest.skip(f"{PYTHON_ENV}={python} has no {_SERVER_MODULE}")
    return python


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _config(workdir: Path, port: int, shared_secret: str) -> dict[str, Any]:
    # JSON is YAML, so this is written with json and needs no YAML library.
    return {
        "server_name": SERVER_NAME,
        "public_baseurl": f"http://127.0.0.1:{port}/",
        "pid_file": str(workdir / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(workdir / "homeserver.db")}},
        "media_store_path": str(workdir / "media_store"),
        "signing_key_path": str(workdir / "signing.key"),
        "registration_shared_secret": shared_secret,
        "macaroon_secret_key": secrets.token_hex(32),
        "form_secret": secrets.token_hex(32),
        "enable_registration": False,
        # Cheap password hashes: registration and every apprise login check one.
        "bcrypt_rounds": 4,
        "report_stats": False,
        "enable_metrics": False,
        # No federation: no federation listener, no peer allowed, no key servers to ask.
        "federation_domain_whitelist": [],
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "allow_public_rooms_over_federation": False,
        "url_preview_enabled": False,
        "presence": {"enabled": False},
        "rc_message": _UNLIMITED,
        "rc_registration": _UNLIMITED,
        "rc_login": {
            "address": _UNLIMITED,
            "account": _UNLIMITED,
            "failed_attempts": _UNLIMITED,
        },
        "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
        "rc_joins_per_room": _UNLIMITED,
        "rc_invites": {
            "per_room": _UNLIMITED,
            "per_user": _UNLIMITED,
            "per_issuer": _UNLIMITED,
        },
        "rc_room_creation": _UNLIMITED,
        "rc_media_create": _UNLIMITED,
        "rc_admin_redaction": _UNLIMITED,
    }


def _server_env() -> dict[str, str]:
    env = dict(os.environ)
    # The server never needs a proxy on loopback, and must not inherit the test venv's paths.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "PYTHONPATH"):
        env.pop(name, None)
    return env


def _client(base_url: str, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=base_url,
        headers=_bearer(token) if token else None,
        timeout=HTTP_TIMEOUT,
        trust_env=False,
    )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _json(reply: httpx.Response, what: str) -> dict[str, Any]:
    if reply.status_code != 200:
        raise SynapseError(f"could not {what}: HTTP {reply.status_code}: {reply.text[:500]}")
    body = reply.json()
    if not isinstance(body, dict):
        raise SynapseError(f"could not {what}: unexpected answer {reply.text[:500]}")
    return body


def _wait_until_up(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with _client(base_url) as client:
        while True:
            code = process.poll()
            if code is not None:
                raise SynapseError(
                    f"Synapse exited with code {code} while starting; log tail:\n"
                    + _tail(log_path, 40)
                )
            try:
                if client.get("/_matrix/client/versions", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SynapseError(
                    f"Synapse did not answer on {base_url} within {START_TIMEOUT:.0f}s; "
                    "log tail:\n" + _tail(log_path, 40)
                )
            time.sleep(0.2)


def _register(client: httpx.Client, shared_secret: str, user: str, password: str) -> str:
    """Register ``user`` through the shared-secret admin API; returns an access token."""
    endpoint = "/_synapse/admin/v1/register"
    nonce = _json(client.get(endpoint), "get a registration nonce")["nonce"]
    mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
    for part in (nonce, user, password):
        mac.update(part.encode())
        mac.update(b"\x00")
    mac.update(b"notadmin")
    body = {
        "nonce": nonce,
        "username": user,
        "password": password,
        "admin": False,
        "mac": mac.hexdigest(),
    }
    token: str = _json(client.post(endpoint, json=body), f"register {user}")["access_token"]
    return token


def _login(client: httpx.Client, user: str, password: str) -> str:
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
    }
    reply = client.post("/_matrix/client/v3/login", json=body)
    token: str = _json(reply, f"log in as {user}")["access_token"]
    return token


def _create_room(client: httpx.Client, token: str) -> str:
    body = {
        "preset": "public_chat",
        "room_alias_name": ROOM_NAME,
        "name": ROOM_NAME,
        "topic": "watcher test alerts",
    }
    reply = client.post("/_matrix/client/v3/createRoom", headers=_bearer(token), json=body)
    room_id: str = _json(reply, "create the room")["room_id"]
    return room_id


def _join(client: httpx.Client, token: str, room: str) -> None:
    reply = client.post(
        f"/_matrix/client/v3/join/{quote(room, safe='')}", headers=_bearer(token), json={}
    )
    _json(reply, f"join {room}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])
