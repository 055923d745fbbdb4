"""How fast is watcher.pipeline.diff on a long article with many scattered edits?

A ~25 KB article (real news text from the shared corpus when present, generated text
otherwise) gets 200 word replacements at random places (fixed seed), then ``word_diff`` and
``compute_change`` are timed with each diff engine, next to a character-level
diff-match-patch diff for comparison. The target is under 20 ms for ``compute_change``.

    python bench/diff_bench.py [--repeat N] [--edits N] [--chars N]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from diff_match_patch import diff_match_patch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout without installing the package

from watcher.pipeline import diff  # noqa: E402

CORPORA = ROOT.parent / "shared" / "corpora"
GROUND_TRUTH = CORPORA / "article-extraction" / "ground-truth.json"
SEED = 1729
TARGET_MS = 20.0
# Vocabulary of the stand-in article generated when the shared corpus is absent.
FILLER_TEXT = (
    "the minister said on tuesday that officials had confirmed reports of heavy fighting "
    "near the border where aid groups warned civilians were trapped without water or power "
    "while talks on a ceasefire stalled in the capital according to a statement"
)


def article(chars: int) -> tuple[str, str]:
    """About ``chars`` characters of article text, one paragraph per line, and its source."""
    if GROUND_TRUTH.is_file():
        bodies = json.loads(GROUND_TRUTH.read_text(encoding="utf-8"))
        lines = (
            " ".join(line.split())
            for key in sorted(bodies)
            for line in bodies[key]["articleBody"].splitlines()
        )
        source = f"real text from {GROUND_TRUTH.relative_to(CORPORA.parent)}"
    else:
        rng = random.Random(SEED)
        lines = (
            " ".join(rng.choices(FILLER_TEXT.split(), k=60)).capitalize() + "."
            for _ in iter(int, 1)
        )
        source = "generated text (shared corpus absent)"
    paragraphs: list[str] = []
    size = 0
    for line in lines:
        if line:
            paragraphs.append(line)
            size += len(line) + 1
        if size >= chars:
            break
    return "\n".join(paragraphs), source


def edited(text: str, edits: int, rng: random.Random) -> str:
    """``text`` with ``edits`` words, chosen at random, replaced by other words of the text."""
    words = list(re.finditer(r"\w+", text))
    pool = sorted({m.group() for m in words})
    parts: list[str] = []
    last = 0
    for index in sorted(rng.sample(range(len(words)), edits)):
        match = words[index]
        replacement = match.group()
        while replacement == match.group():
            replacement = rng.choice(pool)
        parts += [text[last : match.start()], replacement]
        last = match.end()
    return "".join([*parts, text[last:]])


@contextmanager
def pure_python() -> Iterator[None]:
    """Run watcher.pipeline.diff without the compiled engine, as where it is not installed."""
    saved, diff._fast_diff = diff._fast_diff, None
    try:
        yield
    finally:
        diff._fast_diff = saved


def timed(work: Callable[[], object], repeat: int) -> tuple[float, float, float, float]:
    """Median and minimum milliseconds of CPU time, then of wall time."""
    cpu: list[float] = []
    wall: list[float] = []
    work()  # warm up: regex compilation, imports, caches
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        work()
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    return statistics.median(cpu), min(cpu), statistics.median(wall), min(wall)


def char_level(old: str, new: str) -> Callable[[], object]:
    def run() -> object:
        dmp = diff_match_patch()
        dmp.Diff_Timeout = 0  # measure the whole diff, not the default 1 s cut-off
        ops = dmp.diff_main(old, new, False)
        dmp.diff_cleanupSemantic(ops)
        return ops

    return run


def rows(old: str, new: str, repeat: int) -> Iterator[tuple[str, str, tuple[float, ...]]]:
    engine = "fast-diff-match-patch" if diff._fast_diff is not None else None
    for label, work in [
        ("word_diff", lambda: diff.word_diff(old, new)),
        ("compute_change", lambda: diff.compute_change("Title", old, "Title", new)),
    ]:
        if engine:
            yield label, engine, timed(work, repeat)
        with pure_python():
            yield label, "pure python", timed(work, max(3, repeat // 3))
    slow = max(3, repeat // 5)
    yield "char-level diff", "pure python", timed(char_level(old, new), slow)
    if diff._fast_diff is not None:
        fast = diff._fast_diff
        yield "char-level diff", engine or "", timed(lambda: fast(old, new, checklines=False), slow)


def check_laws(old: str, new: str) -> None:
    ops = diff.word_diff(old, new)
    assert "".join(text for op, text in ops if op <= 0) == old
    assert "".join(text for op, text in ops if op >= 0) == new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=21, help="timed runs per row")
    parser.add_argument("--edits", type=int, default=200, help="scattered word replacements")
    parser.add_argument("--chars", type=int, default=25_000, help="article size")
    args = parser.parse_args()
    old, source = article(args.chars)
    new = edited(old, args.edits, random.Random(SEED))
    check_laws(old, new)
    change = diff.compute_change("Title", old, "Title", new)
    print(f"article: {len(old):,} chars, {len(old.splitlines())} paragraphs, {source}")
    print(
        f"edits: {args.edits} word replacements (seed {SEED}) → {len(change.ops)} ops, "
        f"+{change.words_added}/-{change.words_removed} words"
    )
    print(f"compiled engine: {'installed' if diff._fast_diff else 'not installed'}\n")
    header = (
        f"{'what':<16} {'engine':<22} {'cpu median':>11} {'cpu min':>9} "
        f"{'wall median':>12} {'wall min':>9}"
    )
    print(header)
    print("-" * len(header))
    for label, engine, (cpu_med, cpu_min, wall_med, wall_min) in rows(old, new, args.repeat):
        flag = "  ✓ < 20 ms" if label == "compute_change" and cpu_med < TARGET_MS else ""
        print(
            f"{label:<16} {engine:<22} {cpu_med:>8.1f} ms {cpu_min:>6.1f} ms "
            f"{wall_med:>9.1f} ms {wall_min:>6.1f} ms{flag}"
        )


if __name__ == "__main__":
    main()
