"""Paragraph recall of the compared text on the shared article-extraction corpus.

The metric (the issue's): for every paragraph of the true article text with 12 or more
words, its first eight words must appear in the text versions are compared on. Prints the
paragraphs missing from the extractor's text alone ("before") and from the compared text
with the dropped paragraphs of the article's region ("after"), per page and in all, the
extraction time per page, and the CPU time of the recall stage alone (finding the dropped
paragraphs in the parsed tree) against the whole extraction.

    PYTHONPATH=$PWD python bench/recall_bench.py [CORPUS_DIR] [--rounds N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import time
from pathlib import Path

from watcher.pipeline.decode import decode_bytes, fold_source_newlines
from watcher.pipeline.extract import extract_article
from watcher.pipeline.htmltree import parse_page
from watcher.pipeline.normalise import comparable_text, compared_text, normalise
from watcher.pipeline.recall import dropped_paragraphs

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "corpora" / "article-extraction"


def words(text: str) -> str:
    return " ".join(re.findall(r"\w+", normalise(text).casefold()))


def paragraph_starts(truth: str) -> list[str]:
    """First eight words of each true paragraph of 12+ words."""
    paragraphs = (line for line in truth.split("\n") if len(re.findall(r"\w+", line)) >= 12)
    return [" ".join(re.findall(r"\w+", normalise(p).casefold())[:8]) for p in paragraphs]


def recall_seconds(html: bytes, body: str) -> float:
    """CPU seconds of the recall stage alone, on a tree parsed as the extract stage parses it."""
    tree = parse_page(fold_source_newlines(decode_bytes(html, None)))
    started = time.process_time()
    dropped_paragraphs(tree, body)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT, help="corpus folder")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (the best counts)")
    args = parser.parse_args()
    truth = json.loads((args.corpus / "ground-truth.json").read_text("utf-8"))
    total = missing_before = missing_after = pages_before = pages_after = 0
    extract_cpu, recall_cpu = [], []
    for page_id, item in sorted(truth.items()):
        html = gzip.decompress((args.corpus / "html" / f"{page_id}.html.gz").read_bytes())
        rounds = []
        for _ in range(args.rounds):
            started = time.process_time()
            extracted = extract_article(html, item["url"])
            rounds.append(time.process_time() - started)
        extract_cpu.append(min(rounds))
        recall_cpu.append(min(recall_seconds(html, extracted.text) for _ in range(args.rounds)))
        before = words(comparable_text(extracted.text))
        after = words(compared_text(extracted.text, extracted.extra))
        starts = paragraph_starts(item["articleBody"])
        lost_before = [s for s in starts if s not in before]
        lost_after = [s for s in starts if s not in after]
        total += len(starts)
        missing_before += len(lost_before)
        missing_after += len(lost_after)
        pages_before += bool(lost_before)
        pages_after += bool(lost_after)
        if lost_before or lost_after:
            print(
                f"{page_id[:10]}  {len(starts):3d} paragraphs  missing before "
                f"{len(lost_before):2d}  after {len(lost_after):2d}"
            )
            for start in lost_after:
                print(f"    still missing: {start}")
    pages = len(truth)
    print(f"\n{pages} pages, {total} paragraph starts of 12+ word paragraphs")
    print(f"missing before (extracted text only): {missing_before} on {pages_before} pages")
    print(f"missing after (with dropped paragraphs): {missing_after} on {pages_after} pages")
    whole, recall = 1000 * sum(extract_cpu) / pages, 1000 * sum(recall_cpu) / pages
    print(f"extraction {whole:.1f} ms CPU per page (best of {args.rounds})")
    print(f"recall stage {recall:.1f} ms CPU per page, {recall / whole:.0%} of the extraction")


if __name__ == "__main__":
    main()
