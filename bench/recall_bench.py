"""Paragraph recall of the compared text on the shared article-extraction corpus.

The metric (the issue's): for every paragraph of the true article text with 12 or more
words, its first eight words must appear in the text versions are compared on. Prints the
paragraphs missing from the extractor's text alone ("before") and from the compared text
with the dropped paragraphs of the article's region ("after"), per page and in all, and the
extraction time per page.

    PYTHONPATH=$PWD python bench/recall_bench.py [CORPUS_DIR]
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import time
from pathlib import Path

from watcher.pipeline.extract import extract_article
from watcher.pipeline.normalise import comparable_text, compared_text, normalise

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "corpora" / "article-extraction"


def words(text: str) -> str:
    return " ".join(re.findall(r"\w+", normalise(text).casefold()))


def paragraph_starts(truth: str) -> list[str]:
    """First eight words of each true paragraph of 12+ words."""
    paragraphs = (line for line in truth.split("\n") if len(re.findall(r"\w+", line)) >= 12)
    return [" ".join(re.findall(r"\w+", normalise(p).casefold())[:8]) for p in paragraphs]


def main() -> None:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    truth = json.loads((corpus / "ground-truth.json").read_text("utf-8"))
    total = missing_before = missing_after = pages_before = pages_after = 0
    seconds = 0.0
    for page_id, item in sorted(truth.items()):
        html = gzip.decompress((corpus / "html" / f"{page_id}.html.gz").read_bytes())
        started = time.perf_counter()
        extracted = extract_article(html, item["url"])
        seconds += time.perf_counter() - started
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
    print(f"\n{len(truth)} pages, {total} paragraph starts of 12+ word paragraphs")
    print(f"missing before (extracted text only): {missing_before} on {pages_before} pages")
    print(f"missing after (with dropped paragraphs): {missing_after} on {pages_after} pages")
    print(f"extraction {1000 * seconds / len(truth):.1f} ms per page")


if __name__ == "__main__":
    main()
