"""The web view as users start it: `watcher run` with web.listen serving the pages,
/metrics and /healthz on one port (a real subprocess), and a real browser (Debian's
chromium, headless, driven by Playwright) reading the overview and a diff page."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.archive import fill
from support.newsroom import Newsroom, make_story
from support.processes import running, stop, wait_for
from support.receivers import free_port
from support.server import LoopbackServer
from watcher.storage.store import Store
from watcher.web.app import create_app
from watcher.web.serve import bind, server

CHROMIUM = "/usr/bin/chromium"


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None


def test_run_serves_pages_metrics_and_health_on_one_port(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    room = Newsroom(loopback).attach()
    room.add(make_story("talks", "Talks resume", seed=1))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = tmp_path / "watcher.yaml"
    config.write_text(
        f"""
database: "sqlite:///{tmp_path / "watcher.db"}"
allow_private_networks: true
defaults: {{interval: 10s, recheck: [{{until: 1h, every: 1s}}]}}
feeds: [{{name: loop, url: "{room.url("/rss.xml")}"}}]
rules: [{{name: edits, events: [changed]}}]
web: {{listen: "127.0.0.1:{port}", base_url: "https://watcher.example.org"}}
"""
    )
    with running(config, "run", tmp_path / "run.log") as process:

        def listed() -> bool:
            reply = _get(f"{base}/api/v1/articles")
            return bool(reply and reply.status_code == 200 and reply.json()["items"])

        wait_for(listed, 30, "the article in the API")
        overview = httpx.get(f"{base}/", timeout=5)
        assert overview.status_code == 200 and "loop" in overview.text
        assert overview.headers["x-frame-options"] == "DENY"
        metrics = httpx.get(f"{base}/metrics", timeout=5)
        assert "watcher_feed_polls_total" in metrics.text
        health = httpx.get(f"{base}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["scheduler_running"] is True
        assert httpx.get(f"{base}/articles/999999", timeout=5).status_code == 404
        assert stop(process) == 0
    log = (tmp_path / "run.log").read_text()
    assert f"web view on http://127.0.0.1:{port}/ (loopback only, no password)" in log
    assert "cancelled" not in log
    assert _get(f"{base}/healthz") is None


@pytest.fixture
def live_view(tmp_path: Path) -> Iterator[tuple[str, list[int]]]:
    """The web view on a filled database, served by uvicorn on loopback in a thread."""
    import asyncio
    import threading

    url = f"sqlite:///{tmp_path / 'watcher.db'}"
    writer = Store.open(url)
    filled = fill(writer, hostile=True, words=300)
    writer.close()
    store = Store.open(url, create=False, read_only=True)
    port = free_port()
    sock = bind("127.0.0.1", port)
    web = server(create_app(store), own_signals=False)
    thread = threading.Thread(target=asyncio.run, args=(web.serve(sockets=[sock]),))
    thread.start()
    wait_for(lambda: _get(f"http://127.0.0.1:{port}/") is not None, 10, "the server")
    try:
        yield f"http://127.0.0.1:{port}", filled.article_ids
    finally:
        web.should_exit = True
        thread.join(10)
        sock.close()
        store.close()


def test_a_real_browser_reads_the_overview_and_a_diff(
    live_view: tuple[str, list[int]], tmp_path: Path
) -> None:
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    base, ids = live_view
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("dialog", lambda d: problems.append(f"a dialog opened: {d.message}"))
            page.goto(base + "/")
            assert page.locator("h1").first.inner_text() == "Latest changes"
            page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
            page.goto(f"{base}/articles/{ids[0]}/diff/1/2")
            assert page.locator("div.diff del").count() > 0
            assert page.locator("div.diff ins").count() > 0
            assert page.locator("script").count() == 0  # the hostile text stayed text
            assert (
                page.evaluate("getComputedStyle(document.querySelector('del')).textDecorationLine")
                == "line-through"
            )
            page.screenshot(path=str(tmp_path / "diff.png"), full_page=True)
            page.click("text=side by side")
            assert page.locator("table.split tr.changed").count() > 0
            page.screenshot(path=str(tmp_path / "split.png"), full_page=True)
            assert problems == []
        finally:
            browser.close()
    assert (tmp_path / "diff.png").stat().st_size > 10_000


def test_watcher_web_serves_the_database_it_is_given_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    """The command as a reader starts it on a database a `watcher run` filled."""
    import os
    import signal
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'watcher.db'}"
    writer = Store.open(url)
    fill(writer, hostile=True)
    writer.close()
    config = tmp_path / "watcher.yaml"
    config.write_text(f'database: "{url}"\nfeeds: []\n')
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "watcher.cli", "-c", str(config), "web", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/") is not None, 30, "the web view")
        overview = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert overview.status_code == 200
        assert "content-security-policy" in overview.headers
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode in (0, 130), err
    assert b"Traceback" not in err
    assert f"127.0.0.1:{port}".encode() in err  # it says where it listens
