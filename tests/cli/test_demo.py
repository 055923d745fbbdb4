"""``watcher demo``: the simulated newsroom alone, then the whole demo as a newcomer runs it."""

from __future__ import annotations

import os
import pty
import random
import re
import select
import shlex
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import httpx

from watcher.config.loading import load_config
from watcher.demo.newsroom import (
    PUBLISH_EVERY,
    Editor,
    Newsroom,
    follow_up,
    running_newsroom,
    write_config,
)
from watcher.demo.stories import DRAFTS, EDIT_KINDS, EDITS, FIRST_EDITION, Story

ALERT_RULE = "─" * 72


# ------------------------------------------------------------------------- the stories


def test_every_draft_gives_the_editor_what_it_needs() -> None:
    for draft in DRAFTS:
        body = " ".join(draft.paragraphs)
        assert re.search(r"\b\d+\b", body), f"{draft.slug}: no number to revise"
        assert f"“{draft.quotes[0]}," in body, f"{draft.slug}: its first quotation is not quotes[0]"
        assert len(draft.quotes) > 1 and len(draft.headlines) > 1 and draft.updates
        assert not any(re.search(r"\d", h) for h in draft.headlines), draft.slug
    first_edition = " ".join(" ".join(d.paragraphs) for d in DRAFTS[:FIRST_EDITION])
    assert "cease-fire" in first_edition  # the keyword rule fires as soon as the demo starts


# ----------------------------------------------------------------------------- editing


def test_edits_take_turns_by_kind_and_move_from_story_to_story() -> None:
    newsroom = Newsroom("http://127.0.0.1:9", seed=3)
    slugs = [draft.slug for draft in DRAFTS[:FIRST_EDITION]]
    edits = []
    for _ in range(3 * len(EDIT_KINDS)):
        before = {slug: newsroom.current(slug) for slug in slugs}
        edit = newsroom.edit_next()
        edits.append(edit)
        changed = [slug for slug in slugs if newsroom.current(slug) != before[slug]]
        assert changed == [edit.slug] and edit.title == newsroom.current(edit.slug)[0]
    assert [e.kind for e in edits] == list(EDIT_KINDS) * 3
    assert all(a.slug != b.slug for a, b in pairwise(edits))
    kinds_per_story = {slug: {e.kind for e in edits if e.slug == slug} for slug in slugs}
    assert all(len(kinds) >= 3 for kinds in kinds_per_story.values()), kinds_per_story


def test_each_kind_of_edit_changes_what_it_says() -> None:
    rng = random.Random(1)
    story = Story.publish(DRAFTS[0], datetime.now(UTC))
    text = " ".join(story.paragraphs)
    what = EDITS["number"](story, rng)
    old, new = re.findall(r"\d+", what)
    assert f"{new} lorries" in " ".join(story.paragraphs) and f"{old} lorries" in text
    EDITS["quote"](story, rng)
    assert f"“{DRAFTS[0].quotes[1]},” said Ilse Varga" in " ".join(story.paragraphs)
    assert EDITS["headline"](story, rng).startswith("rewrote the headline")
    assert story.title == DRAFTS[0].headlines[1]


def test_once_every_update_is_in_the_next_paragraph_edit_takes_one_out() -> None:
    story = Story.publish(DRAFTS[2], datetime.now(UTC))
    rng = random.Random(1)
    added = [EDITS["paragraph"](story, rng) for _ in DRAFTS[2].updates]
    assert added == ["added a paragraph"] * len(DRAFTS[2].updates)
    assert story.paragraphs[-len(added) :] == list(DRAFTS[2].updates)
    assert EDITS["paragraph"](story, rng) == "took a paragraph out"
    assert DRAFTS[2].updates[0] not in story.paragraphs
    assert EDITS["paragraph"](story, rng) == "added a paragraph"  # back at the end
    assert story.paragraphs[-1] == DRAFTS[2].updates[0]


def test_the_editor_publishes_a_story_every_few_edits_until_none_is_left() -> None:
    newsroom = Newsroom("http://127.0.0.1:9")
    editor = Editor(newsroom, every=3600)  # never started: steps are taken by hand
    counts = []
    for _ in range(PUBLISH_EVERY * len(DRAFTS)):
        editor.step()
        counts.append(len(newsroom.story_urls()))
    assert counts[PUBLISH_EVERY - 2] == FIRST_EDITION
    assert counts[PUBLISH_EVERY - 1] == FIRST_EDITION + 1
    assert counts[-1] == len(DRAFTS)


# ------------------------------------------------------------------------------ serving


def test_pages_and_feed_answer_304_until_their_story_changes() -> None:
    with running_newsroom(None) as newsroom, httpx.Client() as client:
        page = newsroom.story_urls()[0]  # the one the first edit goes to
        for url in (page, newsroom.feed_url):
            first = client.get(url)
            assert first.status_code == 200 and first.headers["etag"]
            again = client.get(url, headers={"If-None-Match": f"W/{first.headers['etag']}"})
            assert again.status_code == 304 and again.content == b""
            assert again.headers["etag"] == first.headers["etag"]
        old = client.get(page)
        edit = newsroom.edit_next()
        assert newsroom.base_url + f"/news/{edit.slug}.html" == page
        for url in (page, newsroom.feed_url):
            etag = old.headers["etag"] if url == page else client.get(url).headers["etag"]
            answer = client.get(url, headers={"If-None-Match": etag})
            assert answer.status_code == (200 if url == page else 304)
        assert client.get(newsroom.base_url + "/news/nothing.html").status_code == 404
        assert edit.title.encode() in client.get(newsroom.base_url + "/").content


def test_a_page_rendered_again_has_new_furniture_and_the_same_story() -> None:
    with running_newsroom(None, render_every=0) as newsroom, httpx.Client() as client:
        page = newsroom.story_urls()[1]
        one, two = client.get(page), client.get(page)
        assert one.headers["etag"] != two.headers["etag"] and one.text != two.text
        _, paragraphs = newsroom.current(DRAFTS[1].slug)
        for paragraph in paragraphs:
            escaped = paragraph.replace("'", "&#x27;")
            assert escaped in one.text and escaped in two.text


def test_the_demo_config_loads_and_keeps_its_database_in_the_folder(tmp_path: Path) -> None:
    path = write_config(tmp_path / "demo", "http://127.0.0.1:9/rss.xml")
    config = load_config(path)
    assert config.allow_private_networks
    assert "127.0.0.1" in path.read_text().split("allow_private_networks")[0]  # says why
    assert config.database_url() == f"sqlite:///{(tmp_path / 'demo' / 'watcher.db').resolve()}"
    assert [r.name for r in config.rules] == ["ceasefire", "all-edits"]
    assert config.notifiers_for("ceasefire") == ("screen",)


def test_follow_up_offers_only_commands_that_have_something_to_show(tmp_path: Path) -> None:
    config_file = tmp_path / "my demo" / "demo.yaml"  # a space: the commands quote it
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    text = follow_up(config_file, empty, ["http://127.0.0.1:9/news/gone.html"])
    commands = [shlex.split(line) for line in text.splitlines() if "watcher -c" in line]
    assert commands == [["watcher", "-c", str(config_file), "alerts"]]


# ---------------------------------------------------------------------- the whole demo


def watcher(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcher.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_demo_shows_alerts_with_diffs_and_leaves_a_database_to_explore(tmp_path: Path) -> None:
    # TMPDIR: the demo's default temporary folder lands in tmp_path, not in /tmp.
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    demo = watcher("demo", "--duration", "25s", "--edit-every", "3s", env=env, timeout=120)
    assert demo.returncode == 0, demo.stderr
    assert "Press Ctrl-C to stop." in demo.stdout and "Traceback" not in demo.stderr
    alerts = demo.stdout.split(ALERT_RULE)[1::2]
    assert any(a.strip().startswith("[watcher] ceasefire:") for a in alerts), demo.stdout
    edited = [a for a in alerts if "What changed" in a]
    assert any("[-" in a or "{+" in a for a in edited), demo.stdout
    assert "changed, version 2" in demo.stderr  # versions are log lines

    commands = [shlex.split(line) for line in demo.stdout.splitlines() if "watcher -c" in line]
    assert [c[3] for c in commands] == ["alerts", "history", "diff"], demo.stdout
    assert Path(commands[0][2]).parent.parent == tmp_path
    history = watcher(*commands[1][1:], env=env, timeout=60)
    assert history.returncode == 0, history.stderr
    assert commands[1][4] in history.stdout and "\n2\t" in history.stdout


def test_the_demo_ends_when_its_terminal_closes(tmp_path: Path) -> None:
    """A closed terminal sends SIGHUP to its session: the demo stops, where the daemon would
    reload, and leaves no orphan behind."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    pid, terminal = pty.fork()
    if pid == 0:  # the child: a session leader whose controlling terminal is the pty
        argv = [sys.executable, "-m", "watcher.cli", "demo", "--duration", "120s"]
        os.execve(sys.executable, argv, env)
    seen = _read_until(terminal, b"Press Ctrl-C to stop.", seconds=60)
    assert b"Press Ctrl-C to stop." in seen, seen.decode(errors="replace")
    time.sleep(1.0)  # the daemon has taken the signals over
    os.close(terminal)  # the terminal window closes
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise AssertionError("the demo kept running after its terminal closed")
    assert os.waitstatus_to_exitcode(status) in (0, -signal.SIGHUP)


def _read_until(fd: int, marker: bytes, seconds: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + seconds
    while marker not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen
