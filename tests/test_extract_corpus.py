"""The extract stage on 91 real news pages (scrapinghub article-extraction-benchmark).

For every page: it extracts; the same page with injected furniture churn (clock line inside
the article, copyright year, ad ids and attributes, a rotating related box, class hashes,
whitespace, an extra wrapper div) compares equal; and a one-word edit in a ground-truth
paragraph shows up. The corpus is third-party data kept outside the repository: the tests
skip when it is absent.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from lxml import etree, html  # type: ignore[import-untyped]

from watcher.extract import comparable_text, extract_article, normalise

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "article-extraction"
EDITED_WORD = "quindecillion"
HEADLINE_POOL = [
    "Markets slide as traders weigh rate outlook",
    "Storm leaves thousands without power",
    "Council approves new budget after long debate",
    "Star striker signs three-year extension",
    "Scientists map a distant galaxy in new detail",
    "Transit strike called off at the last minute",
    "Museum returns looted artefacts",
    "Drought forces water restrictions across the region",
]
WRAP = True
SKIPPED_TAGS = ("script", "style", "noscript", "template")


@cache
def ground_truth() -> dict[str, dict[str, str]]:
    if not (CORPUS / "ground-truth.json").is_file():
        pytest.skip(f"article-extraction corpus not found at {CORPUS}")
    data: dict[str, dict[str, str]] = json.loads((CORPUS / "ground-truth.json").read_text("utf-8"))
    return data


def page_ids() -> list[str]:
    path = CORPUS / "ground-truth.json"
    return sorted(json.loads(path.read_text("utf-8"))) if path.is_file() else ["corpus-absent"]


def load_page(page_id: str) -> tuple[str, str, str]:
    """(html, url, ground-truth body) of one corpus page."""
    truth = ground_truth()[page_id]
    raw = gzip.decompress((CORPUS / "html" / f"{page_id}.html.gz").read_bytes())
    return raw.decode("utf-8"), truth["url"], truth["articleBody"]


@dataclass(frozen=True)
class Churn:
    """One rendering of a page's furniture; two seeds differ in every varying part."""

    seed: int

    @property
    def rng(self) -> random.Random:
        return random.Random(self.seed)


def _fold(text: str) -> str:
    return " ".join(text.split())


def _anchor(root: etree._Element, truth: str) -> etree._Element | None:
    """The first prose element that opens a ground-truth paragraph: it is inside the article."""
    folded_truth = _fold(truth)
    for el in root.iter():
        if not isinstance(el.tag, str) or el.tag in SKIPPED_TAGS or el.getparent() is None:
            continue
        own = _fold(el.text or "")
        if len(own) < 40 and el.tag == "p":
            own = _fold(el.text_content())
        if len(own) >= 40 and own[:40] in folded_truth:
            return el
    return None


def _element(markup: str) -> etree._Element:
    return html.fragment_fromstring(markup)


def _add_ad_noise(root: etree._Element, rng: random.Random) -> None:
    """Ad ids, hashed class names (new values each deploy) and shuffled attribute order.

    Which elements carry them is fixed per page, as on a real site: a redeploy changes a
    CSS-in-JS hash, it does not add one to an element that had none.
    """
    carriers = random.Random(0)
    for el in list(root.iter()):
        if not isinstance(el.tag, str) or carriers.random() > 0.3:
            continue
        attrs = dict(el.attrib)
        attrs["data-ad-id"] = f"ad-id-{rng.getrandbits(24):06x}"
        if "class" in attrs:
            attrs["class"] = f"{attrs['class']} css-{rng.getrandbits(24):06x}"
        items = list(attrs.items())
        rng.shuffle(items)
        el.attrib.clear()
        for key, value in items:
            el.set(key, value)


def _add_ad_slots(body: etree._Element, rng: random.Random) -> None:
    blocks = [el for el in body.iter("div", "section", "aside") if el.getparent() is not None]
    for el in rng.sample(blocks, min(3, len(blocks))):
        slot = _element(f'<div id="ad-{rng.getrandbits(20):05x}" class="ad-slot"></div>')
        el.addprevious(slot)


def _add_whitespace(root: etree._Element, rng: random.Random) -> None:
    """Re-indent: whitespace between tags changes amount, never appears or disappears."""
    for el in root.iter():
        if isinstance(el.tag, str) and el.tail and not el.tail.strip():
            el.tail = rng.choice(["\n", "\n\n  ", " \t\n    ", " "])


def render(page: str, truth: str, churn: Churn, edit: tuple[str, str] | None = None) -> str:
    """The page with this churn's furniture (and optionally one word replaced)."""
    rng = churn.rng
    root = html.document_fromstring(page)
    body = root.body
    anchor = _anchor(root, truth)
    if anchor is not None:
        minutes = rng.randint(1, 59)
        anchor.addprevious(_element(f'<p class="updated">Updated {minutes} minutes ago</p>'))
        box = "".join(f'<li><a href="/s/{i}">{h}</a></li>' for i, h in enumerate(
            rng.sample(HEADLINE_POOL, 4)))
        container = anchor.getparent()
        container.addnext(_element(f'<aside class="related"><h3>Related</h3><ul>{box}</ul></aside>'))
    year = 2019 + rng.randint(0, 7)
    body.append(_element(f"<footer><p>© {year} Example Media Group. All rights reserved.</p></footer>"))
    _add_ad_noise(root, rng)
    _add_ad_slots(body, rng)
    _add_whitespace(root, rng)
    if WRAP:
      wrapper = _element(f'<div class="page-wrap css-{rng.getrandbits(24):06x}"></div>')
      wrapper.extend(list(body))
      body.append(wrapper)
    if edit is not None:
        _replace_word(root, *edit)
    return str(html.tostring(root, encoding="unicode"))


def _text_nodes(root: etree._Element) -> list[tuple[etree._Element, str]]:
    """(element, "text" or "tail") for every prose text node outside scripts and styles."""
    nodes = []
    for el in root.iter():
        # a comment's or script's own text is not prose, but what follows it is
        if isinstance(el.tag, str) and el.tag not in SKIPPED_TAGS:
            nodes.append((el, "text"))
        nodes.append((el, "tail"))
    return nodes


def _replace_word(root: etree._Element, old: str, new: str) -> None:
    """Replace the word wherever the page prints it: some pages carry hidden copies of the
    article, and a CMS edit changes them all."""
    pattern = re.compile(rf"\b{re.escape(old)}\b")
    hits = 0
    for el, slot in _text_nodes(root):
        value = getattr(el, slot) or ""
        if pattern.search(value):
            setattr(el, slot, pattern.sub(new, value))
            hits += 1
    assert hits, f"{old!r} not found in any text node"


def pick_edit_word(comparable: str, truth: str) -> str | None:
    """A word that occurs once in the comparable text, in a line that is in the ground truth."""
    truth_lines = normalise(truth)
    for line in sorted(comparable.split("\n"), key=len, reverse=True):
        # trafilatura marks list items with "- "; the ground truth does not
        if line.removeprefix("- ") not in truth_lines:
            continue
        for word in re.findall(r"[^\W\d_]{6,}", line):
            if len(re.findall(rf"\b{word}\b", comparable)) == 1:
                return word
    return None
