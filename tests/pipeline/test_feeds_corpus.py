"""Every document of feedparser's own test corpus goes through parse_feed.

The corpus holds well-formed, ill-formed, oddly encoded and entity-laden feeds. Whatever a
file contains, parse_feed must return a ParsedFeed or raise FeedError, nothing else. The
``Header: Name: value`` lines in a file's leading comment are the HTTP headers it was served
with (they decide the charset), so they are passed along.
"""

from __future__ import annotations

import re
import traceback
from collections import Counter

import pytest

from support.corpus import print_outcomes
from support.paths import CORPORA
from watcher.errors import FeedError
from watcher.pipeline.feeds import parse_feed

CORPUS = CORPORA / "feedparser" / "tests"
HEADER_LINE = re.compile(rb"^\s*Header:\s*([A-Za-z0-9-]+):[ \t]*(.*?)\s*$", re.MULTILINE)


def corpus_headers(content: bytes) -> dict[str, str]:
    """The ``Header:`` lines of the leading comment (ASCII; UTF-16/32 files have none)."""
    head = content[: content.find(b"-->") + 1 or 4096]
    return {
        name.decode("ascii"): value.decode("latin-1") for name, value in HEADER_LINE.findall(head)
    }


def outcome(content: bytes, url: str) -> str:
    try:
        feed = parse_feed(content, url=url, headers=corpus_headers(content) or None)
    except FeedError as exc:
        return "feed error: " + exc.reason.split(" (")[0].split(":")[0]
    if not feed.entries:  # most corpus items have neither guid nor link, so are dropped
        return "empty feed"
    return "entries, with warning" if feed.warning else "entries"


def test_corpus_gives_feeds_or_feed_errors() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"feedparser corpus not found at {CORPUS}")
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file())
    outcomes: Counter[str] = Counter()
    by_folder: Counter[tuple[str, str]] = Counter()
    crashes: list[str] = []
    for path in files:
        relative = path.relative_to(CORPUS).as_posix()
        try:
            result = outcome(path.read_bytes(), f"http://corpus.example/{relative}")
        except Exception:
            crashes.append(f"{relative}:\n{traceback.format_exc(limit=-3)}")
            continue
        outcomes["feed error" if result.startswith("feed error") else result] += 1
        by_folder[(relative.split("/")[0], result)] += 1

    print_outcomes(f"{len(files)} corpus files:", outcomes, by_folder)
    assert not crashes, f"{len(crashes)} files raised something other than FeedError:\n" + (
        "\n".join(crashes[:10])
    )
    assert len(files) > 2000
    assert by_folder[("json", "entries")] == len(list((CORPUS / "json").glob("*")))
