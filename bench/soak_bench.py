"""Soak: does ``watcher run`` stay flat over a long run at a newsroom's scale?

1,000 feeds of 20 stories each (20,000 articles) are served from loopback by
``bench/soak_site.py`` in its own process: small HTML pages with page furniture, ETag and
Last-Modified with 304 answers, a trickle of real edits and of new stories. The daemon runs
as ``python -m watcher.cli -c CONFIG run`` on a config written to a temp dir (SQLite there,
alerts to the site's json:// hook), with re-check steps of seconds sized for a demand of
``--rate`` checks a second (110, plus new stories' early checks: about 115, or 100,000 checks
in 15 minutes if the daemon keeps up) and poll intervals of 60-120 s. Why not 10-30 s: until
commit fb3c535 a poll cost the daemon about 13 ms of CPU with 20,000 articles stored
(``Store.feed_state`` counted the articles of every feed on each poll), so 46 polls a second
took all of its one core and re-checks starved; ``--interval 15-30`` measures it as it is now.
Every ``--sample-every`` seconds one line:

- RSS (VmRSS), threads and open files of the daemon, from /proc;
- its CPU (utime + stime) per article check in that interval, and checks and polls a second
  (checks: the sum of ``article.checks`` in the database, read-only; polls: the site's count
  of feed requests; both exact);
- the share of page requests answered 304, the due backlog (tracked articles whose re-check
  is more than a minute overdue), the outbox backlog (alerts not routed yet plus deliveries
  pending or retrying), versions, alerts and the articles not checked even once ("fresh").

At the end the daemon gets SIGTERM (exit code and shutdown time are shown) and three verdicts
are printed, each on the samples after the warm-up (the first wave of 20,000 new articles and
at least ``--warmup`` minutes): resident memory within ±10% of its median; CPU per check of
the last third within ±20% of the first third; neither backlog growing (last third against
middle third). Timings are what this machine gave: other work on it only makes them worse.
The first wave (a first poll of every feed, then every page fetched and extracted) took
17 minutes on a busy two-core machine, so ``--minutes 50`` gives a steady state to judge.

    python bench/soak_bench.py [--minutes 20] [--feeds 1000] [--articles 20] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout without installing the package

from watcher.config.loading import load_config  # noqa: E402
from watcher.config.models import Config  # noqa: E402
from watcher.service.daemon import DRAIN_SECONDS  # noqa: E402
from watcher.service.scheduler import RECHECK_BATCH, RECHECK_EVERY  # noqa: E402

SITE = Path(__file__).resolve().with_name("soak_site.py")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# New articles are re-checked every second while under this age ("breaking" step): the
# daemon's re-check job claims at most RECHECK_BATCH due articles per tick, and the tick is
# the shortest step of any feed (at most RECHECK_EVERY), so without a step of about a second
# the claim rate, not the CPU, would cap the run at RECHECK_BATCH / 30 s.
BREAKING = (10, 1)  # (until, every) in seconds
OVERDUE = timedelta(seconds=60)  # a re-check this late counts as backlog
RSS_BAND = 0.10
CPU_BAND = 0.20
GROWTH = 0.25  # a backlog whose last-third mean exceeds the middle third's by this grows...
GROWTH_SLACK_DUE = 0.005  # ...and by more than this share of all articles (due backlog)
GROWTH_SLACK_OUTBOX = 50  # ...and by more than this many rows (outbox): noise near 0 is not


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    feeds: int
    articles: int
    intervals: list[int]  # seconds, one per feed
    every: int  # the re-check step after the breaking one, seconds
    breaking: bool

    @property
    def tracked(self) -> int:
        return self.feeds * self.articles

    @property
    def polls_per_second(self) -> float:
        return sum(1 / interval for interval in self.intervals)

    @property
    def tick(self) -> float:
        # As watcher.service.scheduler.recheck_tick: the shortest step, within [1 s, RECHECK_EVERY].
        steps = [self.every, *([BREAKING[1]] if self.breaking else [])]
        return max(1.0, min([RECHECK_EVERY.total_seconds(), *steps]))

    @property
    def claim_capacity(self) -> float:
        return RECHECK_BATCH / self.tick

    def demand(self, new_per_second: float) -> float:
        # Each new article gets about until/every extra checks while it is breaking news.
        breaking = BREAKING[0] / BREAKING[1] if self.breaking else 0
        return self.tracked / self.every + new_per_second * (1 + breaking)


def make_plan(args: argparse.Namespace) -> Plan:
    low, _, high = args.interval.partition("-")
    lo, hi = int(low), int(high or low)
    # Spread evenly over [lo, hi]: feeds drift apart as on a real install (the scheduler adds
    # its own jitter of a tenth of the interval on top).
    intervals = [round(lo + (hi - lo) * i / max(args.feeds - 1, 1)) for i in range(args.feeds)]
    every = max(1, round(args.feeds * args.articles / args.rate))
    return Plan(args.feeds, args.articles, intervals, every, not args.no_breaking)


def write_config(plan: Plan, folder: Path, base: str) -> Path:
    steps = [f"{{until: {BREAKING[0]}s, every: {BREAKING[1]}s}}"] if plan.breaking else []
    steps.append(f"{{until: 1d, every: {plan.every}s}}")
    feeds = "\n".join(
        f'  - {{name: f{i:04d}, url: "{base}/feeds/f{i}.xml", interval: {interval}s}}'
        for i, interval in enumerate(plan.intervals)
    )
    path = folder / "soak.yaml"
    path.write_text(
        f"""# written by bench/soak_bench.py
database: "sqlite:///{folder / "watcher.db"}"
allow_private_networks: true  # everything is on 127.0.0.1
defaults:
  recheck: [{", ".join(steps)}]
fetch:
  per_host: 32      # one host serves every feed and page
  concurrency: 32
notifiers:
  hook: "json://{base.removeprefix("http://")}/hook"
delivery:
  default: [hook]
rules:
  - {{name: ceasefire, keywords: [cease-fire, truce], events: [new, changed]}}
  - {{name: edits, events: [changed]}}
feeds:
{feeds}
""",
        encoding="utf-8",
    )
    return path


def print_plan(plan: Plan, args: argparse.Namespace, config: Config) -> None:
    demand = plan.demand(args.new)
    expected = min(demand, plan.claim_capacity)
    steps = ", ".join(
        f"every {_seconds(step.every)} until {_seconds(step.until)} old"
        for step in config.settings_for(config.feeds[0]).recheck
    )
    print(
        f"{plan.feeds} feeds x {plan.articles} articles = {plan.tracked} tracked; "
        f"poll intervals {min(plan.intervals)}-{max(plan.intervals)} s; re-check {steps}"
    )
    print(
        f"site: {args.edits:g} edits/s, {args.new:g} new stories/s; fetch concurrency "
        f"{config.fetch.concurrency}, per host {config.fetch.per_host}"
    )
    print(
        f"expected: {plan.polls_per_second:.1f} polls/s; re-check demand {demand:.1f} checks/s, "
        f"claim capacity {RECHECK_BATCH} per {plan.tick:g} s tick = "
        f"{plan.claim_capacity:.0f} checks/s -> {expected:.1f} checks/s, "
        f"~{expected * args.minutes * 60:,.0f} checks in {args.minutes:g} min "
        f"(less while the first {plan.tracked:,} pages are extracted)"
    )
    if plan.claim_capacity < demand:
        print(
            f"  note: the claim capacity is below the demand: the re-check job takes at most "
            f"{RECHECK_BATCH} due articles per tick, whatever the CPU could do"
        )


# ----------------------------------------------------------------------- processes


def start_site(
    args: argparse.Namespace, seconds: float, log: IO[bytes]
) -> tuple[subprocess.Popen[bytes], str]:
    site = subprocess.Popen(
        [
            sys.executable,
            str(SITE),
            f"--feeds={args.feeds}",
            f"--articles={args.articles}",
            f"--edits={args.edits}",
            f"--new={args.new}",
            f"--seconds={seconds:.0f}",
        ],
        stdout=subprocess.PIPE,
        stderr=log,
    )
    assert site.stdout is not None
    line = site.stdout.readline().decode().split()  # "READY <port>" once it listens
    if line[:1] != ["READY"]:
        site.kill()
        raise SystemExit(f"the site did not start (exit {site.wait()}); see its log")
    return site, f"http://127.0.0.1:{line[1]}"


def site_stats(base: str) -> Counter[str]:
    with urllib.request.urlopen(f"{base}/__stats", timeout=10) as answer:
        return Counter(json.load(answer))


@dataclass(frozen=True)
class ProcessFigures:
    rss_mib: float
    cpu_s: float
    threads: int
    fds: int


def process_figures(pid: int) -> ProcessFigures:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kib = int(re.search(r"^VmRSS:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
    # Fields after the command name (which may contain spaces): utime and stime are the
    # 12th and 13th, in clock ticks, summed over all threads (apprise sends in threads).
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return ProcessFigures(rss_kib / 1024, cpu, threads, fds)


@dataclass(frozen=True)
class DbFigures:
    checks: int = 0
    never_checked: int = 0
    due: int = 0
    outbox: int = 0
    versions: int = 0
    alerts: int = 0
    sent: int = 0


def db_figures(path: Path) -> DbFigures:
    """Read-only and on a fresh connection each time: the daemon is the only writer, and a
    reader in WAL mode never blocks it."""
    if not path.exists():
        return DbFigures()
    # Stored as naive UTC text, "YYYY-MM-DD HH:MM:SS.ffffff", so text order is time order.
    overdue = (datetime.now(UTC).replace(tzinfo=None) - OVERDUE).strftime("%Y-%m-%d %H:%M:%S.%f")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
            checks, fresh = db.execute(
                "SELECT coalesce(sum(checks), 0), coalesce(sum(checks = 0), 0) FROM article"
            ).fetchone()
            (due,) = db.execute(
                "SELECT count(*) FROM article WHERE status = 'tracking' AND next_check_at < ?",
                (overdue,),
            ).fetchone()
            (unrouted,) = db.execute(
                "SELECT count(*) FROM alert WHERE delivery_state = 'new'"
            ).fetchone()
            waiting, sent = db.execute(
                "SELECT coalesce(sum(state IN ('pending', 'retrying')), 0),"
                " coalesce(sum(state = 'sent'), 0) FROM delivery"
            ).fetchone()
            (versions,) = db.execute("SELECT count(*) FROM version").fetchone()
            (alerts,) = db.execute("SELECT count(*) FROM alert").fetchone()
    except sqlite3.OperationalError:  # the schema is being created at start-up
        return DbFigures()
    return DbFigures(checks, fresh, due, unrouted + waiting, versions, alerts, sent)


# ------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the daemon started
    proc: ProcessFigures
    db: DbFigures
    site: Counter[str]
    site_cpu_s: float

    @property
    def polls(self) -> int:
        return self.site["feed_200"] + self.site["feed_304"]


HEADER = (
    "   time  RSS MiB  CPU%  ms/check  checks/s  polls/s  304%    due  outbox  versions  "
    "alerts  fresh  thr  fds"
)


def sample_line(now: Sample, before: Sample) -> str:
    seconds = now.t - before.t
    checks = now.db.checks - before.db.checks
    cpu = now.proc.cpu_s - before.proc.cpu_s
    pages_304 = now.site["page_304"] - before.site["page_304"]
    pages = pages_304 + now.site["page_200"] - before.site["page_200"]
    per_check = f"{cpu / checks * 1000:8.2f}" if checks else "       -"
    share = f"{pages_304 / pages * 100:4.0f}" if pages else "   -"
    return (
        f"{_clock(now.t)}  {now.proc.rss_mib:7.1f}  {cpu / seconds * 100:4.0f}  {per_check}  "
        f"{checks / seconds:8.1f}  {(now.polls - before.polls) / seconds:7.1f}  {share}  "
        f"{now.db.due:5d}  {now.db.outbox:6d}  {now.db.versions:8d}  {now.db.alerts:6d}  "
        f"{now.db.never_checked:5d}  {now.proc.threads:3d}  {now.proc.fds:3d}"
    )


def _seconds(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60:4d}:{int(seconds) % 60:02d}"


def take_sample(
    started: float, daemon: int, site: subprocess.Popen[bytes], base: str, db: Path
) -> Sample:
    return Sample(
        time.monotonic() - started,
        process_figures(daemon),
        db_figures(db),
        site_stats(base),
        process_figures(site.pid).cpu_s,
    )


# ------------------------------------------------------------------------ verdicts


def warmup_end(samples: Sequence[Sample], minimum: float, tracked: int) -> int:
    """Index of the first sample after the warm-up: at least ``minimum`` seconds in, the
    first wave of pages done (under 1% of articles never checked: new stories keep coming)
    and the due backlog under 1%."""
    for i, sample in enumerate(samples):
        settled = sample.db.never_checked < tracked / 100 and sample.db.due < tracked / 100
        if sample.t >= minimum and settled and sample.db.checks > 0:
            return i
    return -1


def thirds(items: Sequence[Sample]) -> tuple[Sequence[Sample], ...]:
    n = len(items)
    return items[: n // 3 + 1], items[n // 3 : 2 * n // 3 + 1], items[2 * n // 3 :]


def cpu_per_check(part: Sequence[Sample]) -> float:
    checks = part[-1].db.checks - part[0].db.checks
    return (part[-1].proc.cpu_s - part[0].proc.cpu_s) / checks * 1000 if checks else float("nan")


def verdicts(samples: Sequence[Sample], start: int, tracked: int) -> list[str]:
    steady = samples[start:]
    if len(steady) < 7:
        return [f"too few samples after the warm-up ({len(steady)}) for verdicts: run longer"]
    lines = []
    rss = [s.proc.rss_mib for s in steady]
    median = statistics.median(rss)
    worst = max(rss, key=lambda value: abs(value - median))
    ok = all(abs(value - median) <= RSS_BAND * median for value in rss)
    lines.append(
        f"{_verdict(ok)} resident memory: median {median:.1f} MiB after the warm-up, "
        f"range {min(rss):.1f}-{max(rss):.1f} MiB, worst {(worst - median) / median:+.1%} "
        f"(band ±{RSS_BAND:.0%})"
    )
    first, middle, last = thirds(steady)
    early, late = cpu_per_check(first), cpu_per_check(last)
    ok = abs(late - early) <= CPU_BAND * early
    lines.append(
        f"{_verdict(ok)} CPU per check: first third {early:.2f} ms, middle "
        f"{cpu_per_check(middle):.2f} ms, last third {late:.2f} ms ({late / early - 1:+.1%}; "
        f"band ±{CPU_BAND:.0%})"
    )
    backlogs = (
        (
            "due backlog",
            tracked * GROWTH_SLACK_DUE,
            [s.db.due for s in middle],
            [s.db.due for s in last],
        ),
        (
            "outbox backlog",
            GROWTH_SLACK_OUTBOX,
            [s.db.outbox for s in middle],
            [s.db.outbox for s in last],
        ),
    )
    for name, slack, middle_values, last_values in backlogs:
        before, after = statistics.fmean(middle_values), statistics.fmean(last_values)
        ok = after <= max(before * (1 + GROWTH), before + slack)
        lines.append(
            f"{_verdict(ok)} {name}: mean {before:.0f} in the middle third, {after:.0f} in "
            f"the last (growing = over +{GROWTH:.0%} and over +{slack:.0f})"
        )
    return lines


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# ---------------------------------------------------------------------------- run


def stop_daemon(daemon: subprocess.Popen[bytes]) -> tuple[int | None, float]:
    """SIGTERM, then wait for the drain (DRAIN_SECONDS) and a margin; SIGKILL after that."""
    start = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    try:
        code: int | None = daemon.wait(timeout=DRAIN_SECONDS + 40)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()
        code = None
    return code, time.monotonic() - start


def summarise_log(path: Path) -> list[str]:
    """Counts of the daemon's log lines by level, and its most frequent warnings with the
    variable parts (numbers, URLs) folded, so one kind of trouble is one line."""
    levels: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        level = line.split(" ", 1)[0]
        if level in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            levels[level] += 1
            if level != "INFO":
                folded = re.sub(r"https?://\S+", "URL", line)
                kinds[re.sub(r"\d+(\.\d+)?", "N", folded)[:150]] += 1
        elif line.startswith("Traceback"):
            levels["traceback"] += 1
    lines = [", ".join(f"{n} {level}" for level, n in levels.most_common()) or "empty"]
    lines += [f"  {n:6d} x {kind}" for kind, n in kinds.most_common(6)]
    return lines


def run(args: argparse.Namespace, folder: Path) -> None:
    plan = make_plan(args)
    seconds = args.minutes * 60
    with open(folder / "site.log", "wb") as site_log:
        site, base = start_site(args, seconds + DRAIN_SECONDS + 300, site_log)
    try:
        path = write_config(plan, folder, base)
        config = load_config(path)
        print_plan(plan, args, config)
        print(f"config {path}; site {base} (pid {site.pid})")
        soak(args, plan, folder, path, site, base)
    finally:
        site.terminate()
        site.wait(timeout=30)


def soak(
    args: argparse.Namespace,
    plan: Plan,
    folder: Path,
    config: Path,
    site: subprocess.Popen[bytes],
    base: str,
) -> None:
    db = folder / "watcher.db"
    log_path = folder / "daemon.log"
    seconds = args.minutes * 60
    # The daemon runs from a copy of the package taken now (the working directory comes
    # first on sys.path with -m): others edit this checkout, and a template or module changed
    # in the middle of a long run would make the soak measure a mixture of versions.
    snapshot = folder / "code"
    shutil.copytree(
        ROOT / "watcher", snapshot / "watcher", ignore=shutil.ignore_patterns("__pycache__")
    )
    command = [sys.executable, "-m", "watcher.cli", "-c", str(config), "run"]
    print(f"daemon: {' '.join(command)}  (in {snapshot}, a copy of {ROOT / 'watcher'})")
    with open(log_path, "wb") as log:
        # The log goes to a file, never a pipe: a pipe nobody reads would fill and stall the
        # daemon's event loop on its next log line.
        daemon = subprocess.Popen(command, cwd=snapshot, stdout=log, stderr=log)
    started = time.monotonic()
    samples = [take_sample(started, daemon.pid, site, base, db)]
    print(HEADER)
    try:
        while samples[-1].t < seconds:
            wake = started + min(len(samples) * args.sample_every, seconds)
            time.sleep(max(0.0, wake - time.monotonic()))
            if daemon.poll() is not None:
                print(f"the daemon exited early with {daemon.returncode}; see {log_path}")
                break
            samples.append(take_sample(started, daemon.pid, site, base, db))
            print(sample_line(samples[-1], samples[-2]), flush=True)
    finally:
        code, shutdown = stop_daemon(daemon) if daemon.poll() is None else (daemon.returncode, 0)
    report(args, plan, samples, site, base, db, log_path, code, shutdown)


def report(
    args: argparse.Namespace,
    plan: Plan,
    samples: Sequence[Sample],
    site: subprocess.Popen[bytes],
    base: str,
    db: Path,
    log_path: Path,
    code: int | None,
    shutdown: float,
) -> None:
    first, last = samples[0], samples[-1]
    final = db_figures(db)
    stats = site_stats(base)
    elapsed = last.t - first.t
    checks, polls = final.checks, stats["feed_200"] + stats["feed_304"]
    print()
    print(
        f"SIGTERM -> exit code {code} after {shutdown:.1f} s"
        + ("" if code is not None else " (killed: it did not stop)")
    )
    print(
        f"totals: {checks:,} checks and {polls:,} polls in {elapsed / 60:.1f} min "
        f"({checks / elapsed:.1f} checks/s, {polls / elapsed:.1f} polls/s); daemon CPU "
        f"{last.proc.cpu_s:.0f} s ({last.proc.cpu_s / elapsed:.0%} of one core), site CPU "
        f"{last.site_cpu_s:.0f} s"
    )
    pages = stats["page_200"] + stats["page_304"]
    print(
        f"site: {stats['page_200']:,} pages sent in full, {stats['page_304']:,} answered 304 "
        f"({stats['page_304'] / max(pages, 1):.0%}); feeds {stats['feed_200']:,} in full, "
        f"{stats['feed_304']:,} 304; {stats['edits']:,} edits, {stats['stories_published']:,} "
        f"new stories; {stats['hook_posts']:,} notifications received"
    )
    log_summary = summarise_log(log_path)
    print(
        f"database: {final.versions:,} versions, {final.alerts:,} alerts, {final.sent:,} "
        f"deliveries sent, {final.outbox} waiting; daemon log: {log_summary[0]}"
    )
    for line in log_summary[1:]:
        print(line)
    print()
    start = warmup_end(samples, args.warmup * 60, plan.tracked)
    if start < 0:
        start = next((i for i, s in enumerate(samples) if s.t >= args.warmup * 60), len(samples))
        # The verdicts below then judge a daemon still busy with its first wave: a backlog
        # that cannot grow because it already holds nearly every article is no pass.
        print(
            f"FAIL the first wave never settled: {last.db.never_checked:,} articles never "
            f"checked and {last.db.due:,} overdue after {elapsed / 60:.1f} min; the verdicts "
            f"below take the warm-up as {args.warmup:g} min and say little"
        )
    else:
        print(f"warm-up: the first {samples[start].t / 60:.1f} min (the first wave of pages done)")
    steady = samples[start:]
    if len(steady) > 1:
        rate = (steady[-1].db.checks - steady[0].db.checks) / (steady[-1].t - steady[0].t)
        print(
            f"after the warm-up: {rate:.1f} checks/s against a demand of "
            f"{plan.demand(args.new):.1f}"
        )
    for line in verdicts(samples, start, plan.tracked):
        print(line)
    print(
        f"{_verdict(elapsed >= 20 * 60)} run of at least 20 minutes ({elapsed / 60:.1f} min); "
        f"{_verdict(checks >= 100_000)} at least 100,000 checks ({checks:,})"
    )
    print(f"shutdown: {_verdict(code == 0)} exit code {code} in {shutdown:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--articles", type=int, default=20, help="stories per feed")
    parser.add_argument("--sample-every", type=float, default=30, help="seconds")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (db, logs)")
    parser.add_argument(
        "--rate", type=float, default=110, help="re-check demand to aim at, checks/s"
    )
    parser.add_argument("--interval", default="60-120", help="poll intervals, seconds (LO-HI)")
    parser.add_argument("--edits", type=float, default=2.0, help="site edits per second")
    parser.add_argument("--new", type=float, default=0.5, help="new stories per second")
    parser.add_argument(
        "--warmup", type=float, default=None, help="minimum warm-up, minutes (default: 5)"
    )
    parser.add_argument(
        "--no-breaking",
        action="store_true",
        help="no 1-second first re-check step (shows the claim-rate cap)",
    )
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = min(5.0, args.minutes / 4)
    folder = Path(tempfile.mkdtemp(prefix="watcher-soak-"))
    try:
        run(args, folder)
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
