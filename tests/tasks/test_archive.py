"""The WARC archive of originals, through real passes: pages served byte by byte by a raw
loopback server (gzip, chunked, odd headers) come back out of the WARC files as sent."""

from __future__ import annotations

import asyncio
import gzip
import io
import socket
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from warcio.archiveiterator import ArchiveIterator

from support.raw import RawServer
from support.server import LoopbackServer, Reply
from watcher.cli.commands import main
from watcher.config.loading import load_config
from watcher.config.models import Config
from watcher.storage.archive import WarcArchive
from watcher.storage.store import Store
from watcher.tasks import PassSummary, open_context, run_pass

SENTENCES = [
    "The council met on Tuesday to discuss the harbour plan and its costs for residents.",
    "Officials said the vote would take place next month after a public consultation.",
    "Opponents argued that the plan ignored the needs of the fishing community entirely.",
    "The mayor promised a detailed answer to every question raised during the meeting.",
    "Engineers presented three options, each with a different schedule and budget.",
]


def article_html(edit: str = "") -> bytes:
    paragraphs = "".join(f"<p>{s} {edit}</p>" for s in SENTENCES)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Harbour plan</title></head>"
        f"<body><article><h1>Harbour plan</h1>{paragraphs}</article></body></html>"
    ).encode()


def gzip_message(body: bytes) -> bytes:
    packed = gzip.compress(body)
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Encoding: gzip\r\n"
        b"X-Odd-CASE: caf\xe9 \xff\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
        + f"Content-Length: {len(packed)}\r\nConnection: close\r\n\r\n".encode()
        + packed
    )


def chunked_head() -> bytes:
    return (
        b"HTTP/1.1 200 Fine\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n"
    )


def chunked_body(body: bytes, size: int = 100) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def sends(message: bytes) -> Callable[[socket.socket, threading.Event], None]:
    def script(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(message)

    return script


def rss(*links: str) -> str:
    items = "".join(f"<item><title>Harbour</title><link>{u}</link></item>" for u in links)
    channel = f"<channel><title>t</title>{items}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'


def make_config(tmp_path: Path, feed_url: str) -> Config:
    path = tmp_path / "watcher.yaml"
    path.write_text(
        f"""
        state_dir: state
        allow_private_networks: true
        defaults: {{interval: 1m, recheck: [{{until: 7d, every: 1s}}]}}
        archive: {{warc: warc}}
        feeds: [{{name: desk, url: "{feed_url}"}}]
        """
    )
    return load_config(path)


def one_pass(config: Config, store: Store) -> PassSummary:
    async def go() -> PassSummary:
        async with open_context(config, store) as ctx:
            return await run_pass(ctx, recheck_all=True)

    return asyncio.run(go())


def record_block(archive: WarcArchive, file: str, offset: int) -> tuple[bytes, bytes]:
    """The WARC head and the block (the HTTP message) of the record at ``offset``, read by
    hand from its gzip member, without warcio."""
    data = (archive.directory / file).read_bytes()[offset:]
    member = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
    head, rest = member.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head, rest[:length]


@pytest.fixture
def raw_server() -> RawServer:
    with RawServer() as server:
        yield server


def test_records_hold_the_responses_as_sent(
    tmp_path: Path, loopback: LoopbackServer, raw_server: RawServer, store: Store
) -> None:
    pages = [raw_server.url("/gzip.html"), raw_server.url("/chunked.html")]
    loopback.route("/rss.xml", Reply(body=rss(*pages), headers={"Content-Type": "text/xml"}))
    gz = gzip_message(article_html())
    raw_server.route("/gzip.html", sends(gz))
    raw_server.route("/chunked.html", sends(chunked_head() + chunked_body(article_html("Two."))))
    config = make_config(tmp_path, loopback.url("/rss.xml"))
    one_pass(config, store)
    archive = WarcArchive(config.warc_dir() or tmp_path)

    gzip_version = only_version(store, pages[0])
    assert gzip_version.warc is not None
    warc_head, block = record_block(
        archive, gzip_version.warc_file or "", gzip_version.warc_offset or 0
    )
    assert block == gz  # status line, headers (bytes, case, order, repeats) and gzip body
    assert b"WARC-Type: response" in warc_head and b"WARC-Payload-Digest: sha1:" in warc_head
    assert archive.read_original(gzip_version) == article_html()

    chunked_version = only_version(store, pages[1])
    warc_head, block = record_block(
        archive, chunked_version.warc_file or "", chunked_version.warc_offset or 0
    )
    expected_head = chunked_head().replace(b"Transfer-Encoding: chunked\r\n", b"")
    assert block == expected_head + article_html("Two.")
    assert b"Watcher-Transfer-Encoding: chunked" in warc_head

    # warcio reads every record and finds every digest right; each response has its request.
    for path in archive.files():
        with path.open("rb") as stream:
            records = list(read_all(stream))
        kinds = [r[0] for r in records]
        assert kinds[0] == "warcinfo" and kinds.count("response") == kinds.count("request") == 2
        # In whichever order the pages were extracted (the pool may finish either first).
        requests = {r[1].split(b"\r\n", 1)[0] for r in records if r[0] == "request"}
        assert requests == {b"GET /gzip.html HTTP/1.1", b"GET /chunked.html HTTP/1.1"}


def read_all(stream: io.BufferedReader) -> list[tuple[str, bytes]]:
    out = []
    for record in ArchiveIterator(stream, check_digests="raise"):
        head = record.http_headers.to_bytes() if record.http_headers else b""
        out.append((record.rec_type, head + record.content_stream().read()))
    return out


def only_version(store: Store, url: str):  # type: ignore[no-untyped-def]
    article = store.find_article(url)
    assert article is not None
    versions = store.versions(article.id)
    assert len(versions) == 1
    return versions[0]


def test_every_version_archived_failures_flagged_export_and_raw(
    tmp_path: Path, loopback: LoopbackServer, raw_server: RawServer
) -> None:
    page = raw_server.url("/story.html")
    loopback.route("/rss.xml", Reply(body=rss(page), headers={"Content-Type": "text/xml"}))
    config = make_config(tmp_path, loopback.url("/rss.xml"))
    store = Store.open(config.database_url())
    try:
        for edit in ("", "Revised.", None, "Revised again."):
            if edit is None:  # the server fails once: a flagged record, no version
                message = b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy"
            else:
                message = gzip_message(article_html(edit))
            raw_server.route("/story.html", sends(message))
            one_pass(config, store)
        article = store.find_article(page)
        assert article is not None
        versions = store.versions(article.id)
    finally:
        store.close()
    assert [v.number for v in versions] == [1, 2, 3]
    archive = WarcArchive(config.warc_dir() or tmp_path)
    flagged = []
    for path in archive.files():
        with path.open("rb") as stream:
            for record in ArchiveIterator(stream):
                if record.rec_headers.get_header("Watcher-Outcome") == "failed":
                    flagged.append(record.rec_headers.get_header("Watcher-Error"))
                    assert record.http_headers.get_statuscode() == "503"
    assert len(flagged) == 1 and "503" in flagged[0]

    runner = CliRunner()
    config_file = str(tmp_path / "watcher.yaml")
    shown = runner.invoke(main, ["-c", config_file, "show", page, "--version", "2", "--raw"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout_bytes == article_html("Revised.")
    out = tmp_path / "export.warc.gz"
    exported = runner.invoke(main, ["-c", config_file, "export", page, "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    with out.open("rb") as stream:
        records = list(ArchiveIterator(stream, check_digests="raise"))
        responses = []
    with out.open("rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type == "response":
                responses.append(record.content_stream().read())
    assert len(records) == 7  # warcinfo + 3 × (response, request)
    assert responses == [article_html(e) for e in ("", "Revised.", "Revised again.")]


def test_prune_deletes_only_unreferenced_old_files(tmp_path: Path) -> None:
    archive = WarcArchive(tmp_path)
    names = ("watcher-20240101000000-1-00001.warc.gz", "watcher-20240101000000-1-00002.warc.gz")
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("mine")
    from datetime import UTC, datetime, timedelta

    future = datetime.now(UTC) + timedelta(days=1)
    kept = "watcher-20240101000000-1-00001.warc.gz"
    assert archive.delete_unreferenced({kept}, future) == [names[1]]
    assert archive.delete_unreferenced(set(), datetime(2000, 1, 1, tzinfo=UTC)) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", kept]


# A `watcher check` whose process is killed (SIGKILL) the moment the store is asked to commit
# a version whose WARC record is already written and fsynced: the worst moment.
KILL_BEFORE_COMMIT = """
import os, signal, sys
from watcher.storage.store import Store
real = Store.record_check
def record_check(self, article_id, check):
    if check.warc is not None:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, article_id, check)
Store.record_check = record_check
from watcher.cli.commands import main
main(["-c", sys.argv[1], "check"], prog_name="watcher")
"""


def test_kill_9_between_the_warc_write_and_the_commit(
    tmp_path: Path, loopback: LoopbackServer, raw_server: RawServer
) -> None:
    import signal
    import subprocess
    import sys

    from support.processes import ENV, watcher

    page = raw_server.url("/story.html")
    loopback.route("/rss.xml", Reply(body=rss(page), headers={"Content-Type": "text/xml"}))
    raw_server.route("/story.html", sends(gzip_message(article_html())))
    config = make_config(tmp_path, loopback.url("/rss.xml"))
    config_file = str(tmp_path / "watcher.yaml")
    killed = subprocess.run(
        [sys.executable, "-c", KILL_BEFORE_COMMIT, config_file], env=ENV, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL
    archive = WarcArchive(config.warc_dir() or tmp_path)
    orphans = [r for p in archive.files() for r in read_all(p.open("rb")) if r[0] == "response"]
    assert len(orphans) == 1  # on disk, named by no version
    store = Store.open(config.database_url())
    try:
        article = store.find_article(page)
        assert article is None or not store.versions(article.id)
    finally:
        store.close()
    # The next run redoes the check: one version, pointing at a record that reads back.
    assert watcher(tmp_path / "watcher.yaml", "check").code == 0
    store = Store.open(config.database_url())
    try:
        article = store.find_article(page)
        assert article is not None
        (version,) = store.versions(article.id)
    finally:
        store.close()
    assert archive.read_original(version) == article_html()
    assert version.warc_file is not None


def test_the_web_view_serves_an_original_as_a_download_never_as_a_page(
    tmp_path: Path, loopback: LoopbackServer, raw_server: RawServer
) -> None:
    from starlette.testclient import TestClient

    from watcher.web.app import archive_of, create_app

    page = raw_server.url("/story.html")
    loopback.route("/rss.xml", Reply(body=rss(page), headers={"Content-Type": "text/xml"}))
    config = make_config(tmp_path, loopback.url("/rss.xml"))
    raw_server.route("/story.html", sends(gzip_message(article_html("<script>x()</script>"))))
    writer = Store.open(config.database_url())
    one_pass(config, writer)
    writer.close()
    store = Store.open(config.database_url(), create=False, read_only=True)
    try:
        article = store.find_article(page)
        assert article is not None
        with TestClient(create_app(store, archive=archive_of(config))) as client:
            shown = client.get(f"/articles/{article.id}/versions/1")
            assert f"/articles/{article.id}/versions/1/original" in shown.text
            original = client.get(f"/articles/{article.id}/versions/1/original")
            missing = client.get(f"/articles/{article.id}/versions/2/original")
        with TestClient(create_app(store)) as client:  # archive off: nothing to serve
            off = client.get(f"/articles/{article.id}/versions/1/original")
    finally:
        store.close()
    assert original.status_code == 200
    assert original.content == article_html("<script>x()</script>")
    assert original.headers["content-type"] == "application/octet-stream"
    assert original.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in original.headers["content-security-policy"]
    assert missing.status_code == 404 and off.status_code == 404
