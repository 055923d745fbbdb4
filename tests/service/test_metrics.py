"""Metrics and health: the recording functions, the health rule, the endpoint in-process, and
``watcher run`` serving ``/metrics`` and ``/healthz`` as a user starts it."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.exposition import value
from support.newsroom import Newsroom, make_story
from support.processes import running, stop, wait_for, watcher
from support.receivers import free_port
from support.server import LoopbackServer
from watcher.config.loading import parse_config
from watcher.config.models import Config
from watcher.errors import ConfigError, MetricsError
from watcher.metrics import (
    Metrics,
    active,
    check_done,
    delivery_done,
    poll_done,
    set_backlog,
    use,
)
from watcher.service.exporter import assess, serve_metrics
from watcher.storage.store import Store


def exposed(metrics: Metrics) -> str:
    return metrics.exposition()[0].decode()


# -------------------------------------------------------------------------- recording


def test_recordings_show_in_the_exposition() -> None:
    before = time.time()
    with use(Metrics()) as metrics:
        poll_done("wt", "ok", 0.2, 200)
        poll_done("wt", "not_modified", 0.004, 304)
        poll_done("wt", "failed", 1.5, 503)
        poll_done("bbc", "failed", 60.0, None)
        poll_done("bbc", "skipped", 0.0, None)
        check_done("new", 0.3, 2)
        check_done("changed", 0.4, 1)
        check_done("seen_again", 0.1, 0)
        check_done("failed", 0.02, 0)
        delivery_done("desk", "sent", 3)
        delivery_done("desk", "retrying")
        delivery_done("chat", "gave_up", 0)  # nothing happened: no series made
    text = exposed(metrics)
    assert value(text, "watcher_feed_polls_total", feed="wt", outcome="ok") == 1
    assert value(text, "watcher_feed_polls_total", feed="bbc", outcome="skipped") == 1
    assert value(text, "watcher_feed_not_modified_total", feed="wt") == 1
    assert value(text, "watcher_feed_poll_errors_total", feed="wt", code="503") == 1
    assert value(text, "watcher_feed_poll_errors_total", feed="bbc", code="none") == 1
    assert value(text, "watcher_feed_poll_duration_seconds_count") == 4  # skipped: untimed
    assert value(text, "watcher_feed_poll_duration_seconds_bucket", le="0.005") == 1
    assert value(text, "watcher_feed_poll_duration_seconds_bucket", le="60.0") == 4
    assert value(text, "watcher_article_checks_total", outcome="seen_again") == 1
    assert value(text, "watcher_article_checks_total", outcome="unchanged") == 0
    assert value(text, "watcher_article_check_duration_seconds_count") == 4
    assert value(text, "watcher_versions_stored_total") == 2
    assert value(text, "watcher_alerts_recorded_total") == 3
    assert value(text, "watcher_deliveries_total", notifier="desk", state="sent") == 3
    assert value(text, "watcher_deliveries_total", notifier="desk", state="retrying") == 1
    assert value(text, "watcher_deliveries_total", notifier="chat", state="gave_up") is None
    last = value(text, "watcher_last_successful_poll_timestamp_seconds")
    assert last is not None and before <= last <= time.time()


def test_each_metrics_object_is_separate() -> None:
    outer = active()
    first, second = Metrics(), Metrics()  # no clash: neither is on the global registry
    with use(first):
        poll_done("a", "ok", 0.1, 200)
        with use(second):
            poll_done("a", "failed", 0.1, 500)
        assert active() is first
    assert active() is outer
    assert value(exposed(first), "watcher_feed_polls_total", feed="a", outcome="ok") == 1
    assert value(exposed(first), "watcher_feed_polls_total", feed="a", outcome="failed") is None
    assert value(exposed(second), "watcher_feed_polls_total", feed="a", outcome="ok") is None


def test_the_backlog_gauge_follows_the_outbox() -> None:
    with use(Metrics()) as metrics:
        set_backlog({"new": 1, "pending": 4, "sent": 10})
        set_backlog({"new": 0, "pending": 2, "retrying": 1, "sent": 12})
        set_backlog({"pending": 2, "sent": 12})  # retrying emptied and is no longer listed
    text = exposed(metrics)
    states = {"new": 0, "pending": 2, "retrying": 0, "sent": 12}
    for state, count in states.items():
        assert value(text, "watcher_outbox_backlog", state=state) == count


def test_declared_series_start_at_zero() -> None:
    metrics = Metrics()
    metrics.declare(["wt"], ["desk"])
    text = exposed(metrics)
    assert value(text, "watcher_feed_polls_total", feed="wt", outcome="failed") == 0
    assert value(text, "watcher_deliveries_total", notifier="desk", state="gave_up") == 0
    assert value(text, "watcher_last_successful_poll_timestamp_seconds") == 0


# ---------------------------------------------------------------------------- the config


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [
        ('"127.0.0.1:9464"', "127.0.0.1", 9464),
        ('"[::1]:9464"', "::1", 9464),
        ('"[0:0::1]:80"', "::1", 80),
        ("localhost:9464", "localhost", 9464),
        ('"0.0.0.0:65535"', "0.0.0.0", 65535),
    ],
)
def test_a_listen_address(listen: str, host: str, port: int) -> None:
    address = parse_config(f"metrics: {{listen: {listen}}}").metrics
    assert address is not None
    assert (address.listen.host, address.listen.port) == (host, port)


@pytest.mark.parametrize(
    ("listen", "says"),
    [
        ('"127.0.0.1"', "write it as host:port"),
        ('"127.0.0.1:0"', "port 1-65535"),
        ('"127.0.0.1:99999"', "port 1-65535"),
        ("9464", "write it as host:port"),
        ('"::1:9464"', "put an IPv6 address in brackets"),
        ('"[::g]:9464"', "'::g' is not an IPv6 address"),
        ('"300.1.1.1:9464"', "'300.1.1.1' is not an IPv4 address"),
        ('"under_score:9464"', "'under_score' is not a host name"),
    ],
)
def test_a_bad_listen_address_names_line_and_key(listen: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"feeds: []\nmetrics:\n  listen: {listen}\n", "watcher.yaml")
    assert caught.value.line == 3 and caught.value.key == "metrics.listen"
    assert says in str(caught.value)


def test_metrics_are_off_by_default_and_typos_get_a_hint() -> None:
    assert parse_config("feeds: []").metrics is None
    with pytest.raises(ConfigError) as caught:
        parse_config('metrics: {listen: "127.0.0.1:9464", lisen: x}', "watcher.yaml")
    assert "unknown key 'lisen' (did you mean 'listen'?)" in str(caught.value)


# ---------------------------------------------------------------------------- health

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("running", "started", "last_success", "stale_after", "problem"),
    [
        (True, NOW - 3600, NOW - 10, 30.0, None),
        (False, NOW - 3600, NOW - 10, 30.0, "the scheduler is not running"),
        (True, NOW - 10, None, 30.0, None),  # a fresh start has 3 intervals for a first poll
        (True, NOW - 40, None, 30.0, "no feed poll succeeded for 40 s"),
        (True, NOW - 3600, NOW - 40, 30.0, "no feed poll succeeded for 40 s"),
        (True, NOW - 10, NOW - 86400, 30.0, None),  # a success before the restart: grace too
        (True, NOW - 3600, None, None, None),  # no feeds: only the scheduler counts
    ],
)
def test_the_health_rule(
    running: bool,
    started: float,
    last_success: float | None,
    stale_after: float | None,
    problem: str | None,
) -> None:
    health = assess(
        now=NOW,
        started=started,
        running=running,
        last_success=last_success,
        stale_after=stale_after,
        backlog={"pending": 3},
    )
    assert health.healthy is (problem is None)
    assert health.status == (200 if problem is None else 503)
    assert health.body["problems"] == ([problem] if problem else [])
    age = health.body["last_successful_poll_age_seconds"]
    assert age == (None if last_success is None else NOW - last_success)
    assert health.body["outbox_backlog"] == {"pending": 3}


# ------------------------------------------------------------------- the endpoint in-process


def endpoint_config(listen: str, interval: str = "1m") -> str:
    return f"""
feeds: [{{name: wt, url: "http://wt.example/feed", interval: {interval}}}]
notifiers: {{desk: "json://127.0.0.1:9/hook"}}
metrics: {{listen: "{listen}"}}
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'watcher.db'}")
    yield opened
    opened.close()


def test_the_endpoint_serves_metrics_and_health(store: Store) -> None:
    port = free_port()
    scheduler = {"running": True}

    async def scenario() -> None:
        config = parse_config(endpoint_config(f"127.0.0.1:{port}"))
        async with serve_metrics(config) as exporter:
            exporter.attach(store, lambda: scheduler["running"], lambda: config)
            poll_done("wt", "ok", 0.05, 200)  # the daemon's metrics are active now
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                await _serves(client, scheduler)

    outer = active()
    asyncio.run(scenario())
    assert active() is outer  # stop() gives the process its metrics back


async def _serves(client: httpx.AsyncClient, scheduler: dict[str, bool]) -> None:
    reply = await client.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=")
    text = reply.text
    assert value(text, "watcher_feed_polls_total", feed="wt", outcome="ok") == 1
    assert value(text, "watcher_deliveries_total", notifier="desk", state="sent") == 0
    assert value(text, "watcher_scheduler_running") == 1
    assert value(text, "watcher_outbox_backlog", state="new") == 0
    assert value(text, "process_resident_memory_bytes")
    health = await client.get("/healthz")
    assert health.status_code == 200
    body = health.json()
    assert body["healthy"] and body["scheduler_running"] and body["problems"] == []
    assert 0 <= body["last_successful_poll_age_seconds"] < 60
    assert body["stale_after_seconds"] == 180
    assert body["outbox_backlog"] == {"new": 0}
    scheduler["running"] = False
    health = await client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["problems"] == ["the scheduler is not running"]
    head = await client.head("/metrics")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > 0
    assert (await client.post("/metrics")).status_code == 405
    assert (await client.get("/")).status_code == 404
    open_metrics = await client.get("/metrics", headers={"accept": "application/openmetrics-text"})
    assert open_metrics.text.endswith("# EOF\n")


def test_bad_requests_get_an_answer_and_slow_clients_do_not_hold_the_stop(store: Store) -> None:
    port = free_port()

    async def scenario() -> None:
        config = parse_config(endpoint_config(f"127.0.0.1:{port}"))
        async with serve_metrics(config) as exporter:
            exporter.attach(store, lambda: True, lambda: config)
            assert await _raw(port, b"nonsense\r\n\r\n") == b"HTTP/1.1 400 Bad Request"
            huge = b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"x" * 20_000 + b"\r\n\r\n"
            assert (await _raw(port, huge)).startswith(b"HTTP/1.1 431 ")
            _, idle = await asyncio.open_connection("127.0.0.1", port)  # sends nothing
            started = time.monotonic()
        assert time.monotonic() - started < 1  # the idle client did not hold the stop
        idle.close()
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)

    asyncio.run(scenario())


async def _raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    return status_line.rstrip()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_an_ipv6_address(store: Store) -> None:
    port = free_port()

    async def scenario() -> int:
        config = parse_config(endpoint_config(f"[::1]:{port}"))
        async with serve_metrics(config) as exporter, httpx.AsyncClient() as client:
            exporter.attach(store, lambda: True, lambda: config)
            return (await client.get(f"http://[::1]:{port}/healthz")).status_code

    assert asyncio.run(scenario()) == 200


def test_a_busy_port_is_one_error() -> None:
    async def serve(config: Config) -> None:
        async with serve_metrics(config):
            raise AssertionError("served on a busy port")

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = parse_config(endpoint_config(f"127.0.0.1:{port}"))
        outer = active()
        with pytest.raises(MetricsError) as caught:
            asyncio.run(serve(config))
    assert str(caught.value) == (
        f"metrics: cannot listen on 127.0.0.1:{port}: address already in use"
    )
    assert active() is outer


# ---------------------------------------------------------------- watcher run, as a user


def daemon_config(tmp_path: Path, room: Newsroom, port: int) -> Path:
    config = tmp_path / "watcher.yaml"
    config.write_text(
        f"""
database: "sqlite:///{tmp_path / "watcher.db"}"
allow_private_networks: true
defaults: {{interval: 10s, recheck: [{{until: 1h, every: 1s}}]}}
feeds: [{{name: loop, url: "{room.url("/rss.xml")}"}}]
rules: [{{name: edits, events: [changed]}}]
metrics: {{listen: "127.0.0.1:{port}"}}
"""
    )
    return config


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None


def test_run_serves_metrics_and_health(loopback: LoopbackServer, tmp_path: Path) -> None:
    room = Newsroom(loopback).attach()
    room.add(make_story("talks", "Talks resume", seed=1))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = daemon_config(tmp_path, room, port)
    with running(config, "run", tmp_path / "run.log") as process:

        def polled() -> bool:
            reply = _get(f"{base}/metrics")
            ok = reply and value(reply.text, "watcher_feed_polls_total", feed="loop", outcome="ok")
            return bool(ok)

        wait_for(polled, 30, "a successful poll in /metrics")
        text = httpx.get(f"{base}/metrics", timeout=5).text
        assert value(text, "watcher_scheduler_running") == 1
        assert value(text, "watcher_feed_poll_duration_seconds_count")
        health = httpx.get(f"{base}/healthz", timeout=5)
        assert health.status_code == 200, health.text
        body = json.loads(health.text)
        assert body["scheduler_running"] and body["last_successful_poll_age_seconds"] < 30
        assert stop(process) == 0
    log = (tmp_path / "run.log").read_text()
    assert f"metrics: /metrics and /healthz on http://127.0.0.1:{port}" in log
    assert "cancelled" not in log  # the endpoint is closed before the drain, not waited for
    assert _get(f"{base}/healthz") is None


def test_run_stops_at_start_when_the_port_is_taken(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    room = Newsroom(loopback).attach()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        outcome = watcher(daemon_config(tmp_path, room, port), "run")
    assert outcome.code == 1, outcome
    assert outcome.stderr.strip().splitlines() == [
        f"watcher: error: metrics: cannot listen on 127.0.0.1:{port}: address already in use"
    ]
