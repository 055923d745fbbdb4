"""Crashes and the state directory, tested the way they happen in production.

- ``watcher check`` and ``watcher run`` are SIGKILLed at random moments (seeded) against a
  loopback newsroom whose stories are edited between and during runs; after each kill the
  work is redone to completion and the database must be intact, with no version or alert
  doubled or lost. Alerts go to a real webhook receiver, which counts them: every alert
  arrives, and one arrives twice only when a kill fell between its send and its commit
  (README: at most one message per kill and notifier).
- One writer per database: a second ``watcher run``, or a ``check`` beside it, refuses to
  start and names the process holding the database.
- A state directory that is a file, read-only or full stops ``check`` and ``run`` with one
  line (``watcher: error: database ...: <what is wrong>``, exit 1) and leaves the database intact.

The oracle reads the database with the stdlib ``sqlite3``, not with watcher's own store.
"""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.db import database_url
from support.newsroom import Newsroom, harness_config, make_story
from support.processes import ENV, Outcome, cli, daemon, running, stop, wait_for, watcher
from support.receivers import Webhook
from support.server import LoopbackServer
from watcher.service.lock import InstanceLocked, instance_lock

FIRST_STORIES = 4
MAX_STORIES = 8
CATCH_UP_SECONDS = 30.0
FEED_PATHS = ("/rss.xml", "/atom.xml", "/feed.json")
STARTUP_KILLS = 0.2  # the share of kills aimed at start-up rather than at the work

# Edits are sentences of random words: unique, so each one is a distinct story text, and
# never recurring across articles, so furniture learning cannot swallow one.
_VOCABULARY = """
    harbour council minister convoy village border bridge report envoy talks ministry hospital
    river station market courthouse governor airport valley province shipment bakery garrison
    tribunal factory lighthouse railway orchard quarry parliament delegate observer commander
    engineer farmer teacher surgeon pilot mayor judge crew witnesses reopened delayed confirmed
    denied inspected repaired evacuated announced postponed
"""
_WORDS = tuple(_VOCABULARY.split())


def edit_paragraph(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(16)]
    return " ".join(words).capitalize() + "."


# ------------------------------------------------------------------------------ processes


def write_config(
    directory: Path,
    room: Newsroom,
    database: Path,
    name: str = "watcher.yaml",
    hook: str = "json://127.0.0.1:9/nobody",
) -> Path:
    """Three feeds listing the same stories; a catch-all rule for each event, sent to ``hook``."""
    config = directory / name
    config.write_text(harness_config(room, f"sqlite:///{database}", hook))
    return config


def assert_clean(outcome: Outcome) -> None:
    assert outcome.code == 0, outcome.stderr
    assert "Traceback" not in outcome.stderr, outcome.stderr


def assert_one_line_error(outcome: Outcome, pattern: str) -> str:
    """Exit 1 and exactly one line ``watcher: error: database ...: <what is wrong>``."""
    assert outcome.code == 1, outcome
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith("watcher: error: database "), lines[0]
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


# ---------------------------------------------------------------------------- the oracle


@dataclass
class Ledger:
    """What the newsroom served: each story's edit paragraphs in order (the marker of each
    state; None for the story as first published), and which states a completed pass saw."""

    room: Newsroom
    edits: dict[str, list[str]] = field(default_factory=dict)
    completed: dict[str, set[str | None]] = field(default_factory=dict)

    def add_story(self, slug: str, seed: int) -> None:
        self.room.add(make_story(slug, f"Story number {seed} about {slug}", seed=seed))
        self.edits[slug] = []
        self.completed[slug] = set()

    def edit(self, slug: str, rng: random.Random) -> None:
        paragraph = edit_paragraph(rng)
        base = self.room.stories[slug].paragraphs[: 7 if self.edits[slug] else None]
        self.room.edit(slug, paragraphs=[*base, paragraph])
        self.edits[slug].append(paragraph)

    def current(self, slug: str) -> str | None:
        return self.edits[slug][-1] if self.edits[slug] else None

    def pass_completed(self) -> None:
        for slug in self.edits:
            self.completed[slug].add(self.current(slug))

    def state_of(self, slug: str, text: str) -> int:
        """Which state of the story a stored text is: the index of its edit, -1 for none."""
        found = [i for i, paragraph in enumerate(self.edits[slug]) if paragraph in text]
        assert len(found) <= 1, f"{slug}: one text holds two edits: {text!r}"
        return found[0] if found else -1

    def url(self, slug: str) -> str:
        return self.room.url(self.room.stories[slug].path())


@dataclass
class Counts:
    articles: int
    versions: int
    alerts: int


@contextmanager
def connect(database: Path) -> Iterator[sqlite3.Connection]:
    """A connection closed after the block (sqlite3's own ``with`` only ends a transaction:
    a connection left open keeps the WAL file, and the file system busy)."""
    with closing(sqlite3.connect(database, timeout=10)) as db:
        yield db


def caught_up(database: Path, ledger: Ledger, *, delivered: bool = False) -> bool:
    """Every story is tracked and its latest version is the text served now (and, with
    ``delivered``, the outbox has sent every alert)."""
    if not database.exists():
        return False
    try:
        with connect(database) as db:
            latest = latest_texts(db)
            unsent = db.execute(
                "SELECT (SELECT count(*) FROM alert WHERE delivery_state = 'new') + "
                "(SELECT count(*) FROM delivery WHERE state != 'sent')"
            ).fetchone()[0]
    except sqlite3.OperationalError:  # schema not created yet
        return False
    if delivered and unsent:
        return False
    for slug in ledger.edits:
        text = latest.get(ledger.url(slug))
        marker = ledger.current(slug) or ledger.room.stories[slug].paragraphs[-1]
        if text is None or marker not in text:
            return False
    return True


def latest_texts(db: sqlite3.Connection) -> dict[str, str]:
    rows = db.execute(
        "SELECT a.url, v.text FROM article a JOIN version v ON v.article_id = a.id "
        "WHERE v.number = (SELECT max(number) FROM version WHERE article_id = a.id)"
    )
    return dict(rows.fetchall())


def assert_consistent(database: Path, ledger: Ledger, *, in_order: bool = True) -> Counts:
    """The database after a completed pass: intact, nothing doubled, nothing lost.

    ``in_order``: versions follow the newsroom's order of edits. True whenever one writer
    ran at a time; two concurrent writers may legitimately store two edits in either order.
    """
    with connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        articles = {
            url: (i, current)
            for i, url, current in db.execute("SELECT id, url, current_version FROM article")
        }
        assert sorted(articles) == sorted(ledger.url(slug) for slug in ledger.edits)
        versions = 0
        for slug in ledger.edits:
            article_id, current = articles[ledger.url(slug)]
            versions += _assert_versions(db, ledger, slug, article_id, current, in_order)
        alerts = _assert_alerts(db, versions)
    return Counts(len(articles), versions, alerts)


def _assert_versions(
    db: sqlite3.Connection,
    ledger: Ledger,
    slug: str,
    article_id: int,
    current: int,
    in_order: bool,
) -> int:
    rows = db.execute(
        "SELECT number, content_hash, text FROM version WHERE article_id = ? ORDER BY number",
        (article_id,),
    ).fetchall()
    numbers = [number for number, _, _ in rows]
    assert numbers == list(range(1, len(rows) + 1)), f"{slug}: version numbers {numbers}"
    assert len({digest for _, digest, _ in rows}) == len(rows), f"{slug}: a hash twice"
    states = [ledger.state_of(slug, text) for _, _, text in rows]
    # No doubling: two versions of one served text would map to the same state.
    assert len(set(states)) == len(states), f"{slug}: a text stored twice: states {states}"
    if in_order:
        assert states == sorted(states), f"{slug}: versions out of order: {states}"
        assert current == len(rows), f"{slug}: current version {current} of {len(rows)}"
    # No loss: every text a completed pass saw is stored, the one served now is the latest.
    seen = {ledger.state_of(slug, marker or "") for marker in ledger.completed[slug]}
    assert seen <= set(states), f"{slug}: states {seen - set(states)} never stored"
    now = ledger.state_of(slug, ledger.current(slug) or "")
    assert states[current - 1] == now, f"{slug}: current is state {states[current - 1]}, not {now}"
    return len(rows)


def _assert_alerts(db: sqlite3.Connection, versions: int) -> int:
    """Exactly one ``new`` alert per first version, one ``changed`` per later version."""
    alerts = db.execute("SELECT rule, event, version_id FROM alert").fetchall()
    keys = [(rule, version) for rule, _, version in alerts]
    assert len(set(keys)) == len(keys), "an alert recorded twice"
    expected = {
        (("all", "new") if number == 1 else ("edits", "changed"), version_id)
        for version_id, number in db.execute("SELECT id, number FROM version")
    }
    found = {((rule, event), version) for rule, event, version in alerts}
    assert found == expected, (
        f"missing alerts {sorted(expected - found)[:5]}, unexpected {sorted(found - expected)[:5]}"
    )
    assert len(alerts) == versions
    return len(alerts)


# --------------------------------------------------------------------------- the harness


@dataclass
class Harness:
    ledger: Ledger
    config: Path
    database: Path
    logs: Path  # one stderr file per process started
    seed: int
    hook: Webhook
    kills: dict[str, int] = field(default_factory=dict)  # by command and moment
    kills_after_exit: int = 0  # the victim had already finished its pass
    startup_seconds: float = 1.0  # process start to its first feed request
    work_seconds: float = 1.0  # first feed request to the end of a check pass

    def calibrate(self) -> None:
        """Measure a ``check``: kill moments are drawn from its start-up and its work."""
        began = time.monotonic()
        before = self.feed_requests()
        with running(self.config, "check", self.next_log("check-calibration")) as process:
            wait_for(lambda: self.feed_requests() > before, CATCH_UP_SECONDS, "a poll", 0.005)
            working = time.monotonic()
            assert process.wait(timeout=60) == 0
        self.startup_seconds = working - began
        self.work_seconds = time.monotonic() - working
        self.ledger.pass_completed()

    def feed_requests(self) -> int:
        server = self.ledger.room.server
        return sum(len(server.requests_to(path)) for path in FEED_PATHS)

    def iteration(self, i: int) -> Counts:
        rng = random.Random(self.seed * 100_003 + i)
        self.edit_some(rng)
        command = "check" if i % 2 == 0 else "run"
        before = self.feed_requests()
        with running(self.config, command, self.next_log(f"{command}-killed")) as victim:
            if rng.random() < STARTUP_KILLS:  # imports, opening and migrating the database
                moment = "start-up"
                time.sleep(rng.uniform(0, self.startup_seconds))
            else:
                moment = "work"
                wait_for(lambda: self.feed_requests() > before, CATCH_UP_SECONDS, "a poll", 0.005)
                self.sleep_into_the_work(rng, command)
            self.kill(victim, f"{command} in {moment}")
        if command == "check":
            self.clean_check()
        else:
            self.clean_run()
        counts = assert_consistent(self.database, self.ledger)
        self.assert_received()
        return counts

    def assert_received(self) -> None:
        """Every recorded alert reached the receiver; repeats only as kills allow."""
        with connect(self.database) as db:
            recorded = {i for (i,) in db.execute("SELECT id FROM alert")}
        received = self.hook.alert_ids()
        assert recorded <= set(received), f"alerts never received: {recorded - set(received)}"
        assert set(received) <= recorded, f"received unknown alerts {set(received) - recorded}"
        assert self.repeats() <= sum(self.kills.values()), f"repeats {self.repeats()}"

    def repeats(self) -> int:
        received = self.hook.alert_ids()
        return len(received) - len(set(received))

    def sleep_into_the_work(self, rng: random.Random, command: str) -> None:
        if command == "check":
            time.sleep(rng.uniform(0, self.work_seconds))
            return
        # The daemon re-checks every second: a window of one and a half cycles, with an edit
        # inside it that the victim may or may not store before it dies.
        delay, edit_at = rng.uniform(0, 1.5), rng.uniform(0, 1.5)
        time.sleep(min(delay, edit_at))
        if edit_at < delay:
            self.edit_some(rng)
            time.sleep(delay - edit_at)

    def edit_some(self, rng: random.Random) -> None:
        if len(self.ledger.edits) < MAX_STORIES and rng.random() < 0.25:
            self.ledger.add_story(f"story-{len(self.ledger.edits)}", len(self.ledger.edits))
        for slug in rng.sample(sorted(self.ledger.edits), rng.randint(1, 2)):
            self.ledger.edit(slug, rng)

    def kill(self, process: subprocess.Popen[bytes], what: str) -> None:
        self.kills[what] = self.kills.get(what, 0) + 1
        self.kills_after_exit += process.poll() is not None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def clean_check(self) -> None:
        assert_clean(cli(self.config, "check", "--recheck-all"))
        self.ledger.pass_completed()

    def clean_run(self) -> None:
        """Restart the daemon, wait until it has caught up with the newsroom, SIGTERM it."""
        log = self.next_log("run")
        with daemon(self.config, log) as process:
            # The victim may have caught up already: wait for this one to be up, then check.
            wait_for(lambda: "watching" in log.read_text(), CATCH_UP_SECONDS, "the start", 0.02)
            wait_for(
                lambda: caught_up(self.database, self.ledger, delivered=True),
                CATCH_UP_SECONDS,
                "catch-up and delivery",
            )
            self.ledger.pass_completed()
            assert stop(process) == 0, log.read_text()[-3000:]

    def next_log(self, command: str) -> Path:
        return self.logs / f"{len(list(self.logs.glob('*'))):04}-{command}.log"

    def assert_no_traceback(self) -> None:
        for log in sorted(self.logs.glob("*.log")):
            text = log.read_text()
            assert "Traceback" not in text, f"{log.name}:\n{text[-4000:]}"


def crash_harness(loopback: LoopbackServer, tmp_path: Path, iterations: int, seed: int) -> None:
    began = time.monotonic()
    ledger = Ledger(Newsroom(loopback).attach())
    for i in range(FIRST_STORIES):
        ledger.add_story(f"story-{i}", i)
    database = tmp_path / "state" / "watcher.db"
    hook = Webhook()
    config = write_config(tmp_path, ledger.room, database, hook=hook.url)
    harness = Harness(ledger, config, database, tmp_path / "logs", seed, hook)
    harness.logs.mkdir()
    with hook:
        harness.calibrate()
        counts = assert_consistent(database, ledger)
        harness.assert_received()
        for i in range(iterations):
            counts = harness.iteration(i)
    harness.assert_no_traceback()
    edits = sum(len(e) for e in ledger.edits.values())
    kills = ", ".join(f"{n} {what}" for what, n in sorted(harness.kills.items()))
    print(
        f"\ncrash harness, seed {seed}: {iterations} iterations in "
        f"{time.monotonic() - began:.1f} s; {sum(harness.kills.values())} kills ({kills}; "
        f"{harness.kills_after_exit} after the pass had ended); {counts.articles} articles, "
        f"{edits} edits, {counts.versions} versions, {counts.alerts} alerts, "
        f"{len(hook.alert_ids())} received ({harness.repeats()} twice: a kill between send "
        f"and commit); start-up "
        f"{harness.startup_seconds:.2f} s, first pass {harness.work_seconds:.2f} s"
    )


def test_kill_9_loses_and_doubles_nothing(loopback: LoopbackServer, tmp_path: Path) -> None:
    crash_harness(loopback, tmp_path, iterations=20, seed=1)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_kill_9_soak(loopback: LoopbackServer, tmp_path: Path) -> None:
    crash_harness(loopback, tmp_path, iterations=100, seed=2)


# ----------------------------------------------------------------------- single instance


def newsroom_with(loopback: LoopbackServer, stories: int) -> Ledger:
    ledger = Ledger(Newsroom(loopback).attach())
    for i in range(stories):
        ledger.add_story(f"story-{i}", i)
    return ledger


def test_the_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state' / 'watcher.db'}"
    with instance_lock(url, "run") as where:
        assert where.endswith("watcher.db.lock")
        # flock locks belong to an open file, so a second open in this process conflicts too.
        holder = f"in use by watcher run, pid {os.getpid()} on "
        with pytest.raises(InstanceLocked, match=holder), instance_lock(url, "check"):
            pass
    with instance_lock(url, "check"):  # released on exit
        pass
    assert (tmp_path / "state" / "watcher.db.lock").read_text() == ""


_HOLD_LOCK = """
import sys, time
from watcher.service.lock import instance_lock
with instance_lock(sys.argv[1], "run"):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'watcher.db'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, url], stdout=subprocess.PIPE, text=True, env=ENV
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        refused = pytest.raises(InstanceLocked, match=f"pid {holder.pid} on ")
        with refused, instance_lock(url, "run"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with instance_lock(url, "run"):  # the kernel dropped the dead holder's lock
        pass


def test_postgres_lock_is_exclusive_per_schema(tmp_path: Path) -> None:
    with database_url("postgres", tmp_path) as url, database_url("postgres", tmp_path) as other:
        with instance_lock(url, "run") as where:
            assert "advisory lock" in where
            holder = f"in use by watcher run, pid {os.getpid()} on "
            with pytest.raises(InstanceLocked, match=holder), instance_lock(url, "check"):
                pass
            with instance_lock(other, "run"):  # another schema is another watcher
                pass
        with instance_lock(url, "run"):  # released with its connection
            pass


@contextmanager
def caught_up_daemon(
    loopback: LoopbackServer, tmp_path: Path
) -> Iterator[tuple[Ledger, Path, Path, subprocess.Popen[bytes], Path]]:
    """A daemon over a two-story newsroom, once it has stored the first versions; yields
    (ledger, database, config, process, log)."""
    ledger = newsroom_with(loopback, 2)
    database = tmp_path / "state" / "watcher.db"
    config = write_config(tmp_path, ledger.room, database)
    log = tmp_path / "daemon.log"
    with daemon(config, log) as process:
        wait_for(lambda: caught_up(database, ledger), CATCH_UP_SECONDS, "the first versions")
        yield ledger, database, config, process, log


def test_a_second_run_refuses_and_the_first_keeps_working(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    with caught_up_daemon(loopback, tmp_path) as (ledger, database, config, first, log):
        second = watcher(config, "run", timeout=30)
        assert_one_line_error(second, rf"in use by watcher run, pid {first.pid} on ")
        assert first.poll() is None
        ledger.edit("story-0", random.Random(0))
        wait_for(lambda: caught_up(database, ledger), CATCH_UP_SECONDS, "the edit")
        ledger.pass_completed()
        assert stop(first) == 0, log.read_text()
    assert "Traceback" not in log.read_text()
    assert_consistent(database, ledger)


def test_one_writer_at_a_time_check_and_run_exclude_each_other(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    """A check beside the daemon is refused: two writers could store one text twice, since
    each hashes text without the furniture *it* has learned (seen before the lock existed:
    one page, two "new" versions and alerts)."""
    with caught_up_daemon(loopback, tmp_path) as (ledger, database, config, process, log):
        refused = cli(config, "check", "--recheck-all")
        assert_one_line_error(refused, rf"in use by watcher run, pid {process.pid} on ")
        ledger.pass_completed()
        assert stop(process) == 0, log.read_text()
    with instance_lock(f"sqlite:///{database}", "check"):  # as a long check would
        refused = cli(config, "run")
        assert_one_line_error(refused, rf"in use by watcher check, pid {os.getpid()} on ")
    assert_clean(cli(config, "check"))
    assert_consistent(database, ledger)


# ------------------------------------------------------------------- the state directory


@pytest.mark.parametrize("state_dir", ["state", "state/deeper"])
@pytest.mark.parametrize("command", ["check", "run"])
def test_a_file_where_the_state_directory_should_be(
    tmp_path: Path, state_dir: str, command: str
) -> None:
    (tmp_path / "state").write_text("a file, not a directory\n")
    config = tmp_path / "watcher.yaml"
    config.write_text(f"state_dir: {state_dir}\nfeeds: []\n")
    blocker = "it" if state_dir == "state" else re.escape(str(tmp_path / "state"))
    assert_one_line_error(
        cli(config, command),
        rf"cannot create the directory .*{re.escape(state_dir)}: "
        rf"{blocker} is a file, not a directory$",
    )


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small tmpfs mounted at ``path``; the test is skipped where mounting is not allowed."""
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        pytest.skip("no mount command")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        # Lazily if something still holds a file open: never leave a mount behind.
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", str(path)], check=True)


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def stored(database: Path) -> list[tuple[int, int, str]]:
    """Every version (article, number, hash), after checking the file is intact."""
    with connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = db.execute("SELECT article_id, number, content_hash FROM version ORDER BY id")
        return rows.fetchall()


def test_a_read_only_state_directory(loopback: LoopbackServer, tmp_path: Path) -> None:
    ledger = newsroom_with(loopback, 2)
    with tmpfs(tmp_path / "mnt", "1m") as folder:
        existing = folder / "watcher.db"
        config = write_config(tmp_path, ledger.room, existing)
        fresh = write_config(tmp_path, ledger.room, folder / "new" / "watcher.db", "new.yaml")
        assert_clean(cli(config, "check"))
        ledger.pass_completed()
        before = stored(existing)
        remount(folder, "ro")
        try:
            for command in ("check", "run"):
                assert_one_line_error(cli(config, command), "Read-only file system")
                assert_one_line_error(cli(fresh, command), "Read-only file system")
        finally:
            remount(folder, "rw")
        assert stored(existing) == before
        assert_consistent(existing, ledger)


def fill(folder: Path) -> Path:
    """Write a file until the file system refuses: the disk is full."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for block in (1 << 16, 1 << 12, 1):
            with suppress(OSError):  # ENOSPC: go on with smaller blocks
                while True:
                    os.write(fd, b"\0" * block)
    finally:
        os.close(fd)
    return filler


@pytest.mark.parametrize("wal_held", [False, True], ids=["alone", "wal-held-open"])
def test_a_full_state_directory(loopback: LoopbackServer, tmp_path: Path, wal_held: bool) -> None:
    """``wal-held-open``: another connection (a running daemon, say) keeps the WAL file, so
    the database opens without allocating anything; the start-up write probe must notice."""
    ledger = newsroom_with(loopback, 2)
    with tmpfs(tmp_path / "mnt", "1m") as folder:
        database = folder / "watcher.db"
        config = write_config(tmp_path, ledger.room, database)
        assert_clean(cli(config, "check"))
        ledger.pass_completed()
        before = stored(database)
        ledger.edit("story-1", random.Random(1))
        with ExitStack() as held:
            if wal_held:
                other = held.enter_context(connect(database))
                other.execute("SELECT count(*) FROM version").fetchall()
            filler = fill(folder)
            try:
                for command in ("check", "run"):
                    assert_one_line_error(cli(config, command), "(?i)disk is full|no space left")
            finally:
                filler.unlink()
        assert stored(database) == before
        # With room again, the edit the full disk held back is stored.
        assert_clean(cli(config, "check", "--recheck-all"))
        ledger.pass_completed()
        assert_consistent(database, ledger)
