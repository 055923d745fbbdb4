"""The extract stage on 91 real news pages (scrapinghub article-extraction-benchmark).

For every page: it extracts to text; two renderings of the page with different furniture
churn compare equal; a one-word edit inside a ground-truth paragraph shows up. Churn is what
changes between two fetches of an unchanged story: an "Updated N minutes ago" line and view
and comment counters inside the article, a rotating related-links box, the footer copyright
year, ad ids, CSS-in-JS class hashes, attribute order, indentation, an extra wrapper div.

The corpus is third-party data kept outside the repository; the tests skip without it.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import statistics
from collections import Counter
from functools import cache

import pytest
from lxml import etree, html  # type: ignore[import-untyped]

from support.paths import CORPORA
from watcher.pipeline.diff import compute_change
from watcher.pipeline.extract import Extracted, extract_article
from watcher.pipeline.normalise import comparable_text, compared_text, normalise

CORPUS = CORPORA / "article-extraction"
EDITED_WORD = "quindecillion"
HEADLINES = [
    "Markets slide as traders weigh rate outlook",
    "Storm leaves thousands without power",
    "Council approves new budget after long debate",
    "Star striker signs three-year extension",
    "Scientists map a distant galaxy in new detail",
    "Transit strike called off at the last minute",
    "Museum returns looted artefacts",
    "Drought forces water restrictions across the region",
]
NOT_PROSE = ("script", "style", "noscript", "template")


def _page_ids() -> list[str]:
    path = CORPUS / "ground-truth.json"
    return sorted(json.loads(path.read_text("utf-8"))) if path.is_file() else ["corpus-absent"]


@cache
def _ground_truth() -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads((CORPUS / "ground-truth.json").read_text("utf-8"))
    return data


def load_page(page_id: str) -> tuple[str, str, str]:
    """(html, url, ground-truth body) of one corpus page; skips when the corpus is absent."""
    if not (CORPUS / "ground-truth.json").is_file():
        pytest.skip(f"article-extraction corpus not found at {CORPUS}")
    truth = _ground_truth()[page_id]
    raw = gzip.decompress((CORPUS / "html" / f"{page_id}.html.gz").read_bytes())
    return raw.decode("utf-8"), truth["url"], truth["articleBody"]


# --- churn ---------------------------------------------------------------------------------


def _fold(text: str) -> str:
    return " ".join(text.split())


def _element(markup: str) -> etree._Element:
    return html.fragment_fromstring(markup)


def _anchor(root: etree._Element, truth: str) -> etree._Element | None:
    """The first prose element that opens a ground-truth paragraph: it is inside the article."""
    folded_truth = _fold(truth)
    for el in root.iter():
        if not isinstance(el.tag, str) or el.tag in NOT_PROSE or el.getparent() is None:
            continue
        own = _fold(el.text or "")
        if len(own) < 40 and el.tag == "p":
            own = _fold(el.text_content())
        if len(own) >= 40 and own[:40] in folded_truth:
            return el
    return None


def _add_article_furniture(root: etree._Element, truth: str, rng: random.Random) -> None:
    """A timestamp and counters just before a body paragraph, a related box after the article."""
    anchor = _anchor(root, truth)
    if anchor is None:
        return
    minutes, views, comments = rng.randint(2, 59), rng.randint(1000, 99999), rng.randint(0, 400)
    anchor.addprevious(_element(f'<p class="updated">Updated {minutes} minutes ago</p>'))
    anchor.addprevious(_element(f"<p>{views:,} views · {comments} comments</p>"))
    links = "".join(
        f'<li><a href="/s/{i}">{h}</a></li>' for i, h in enumerate(rng.sample(HEADLINES, 4))
    )
    header = rng.choice(["Related", "Most read", "Recommended"])
    # No telling class name: only a hash, as CSS-in-JS sites render it.
    box = f'<div class="css-{rng.getrandbits(24):06x}"><h3>{header}</h3><ul>{links}</ul></div>'
    anchor.getparent().addnext(_element(box))


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
    """Empty ad containers, placed differently on every load."""
    blocks = [el for el in body.iter("div", "section", "aside") if el.getparent() is not None]
    for el in rng.sample(blocks, min(3, len(blocks))):
        el.addprevious(_element(f'<div id="ad-{rng.getrandbits(20):05x}" class="ad-slot"></div>'))


def _reindent(root: etree._Element, rng: random.Random) -> None:
    """Whitespace between tags changes amount; it never appears or disappears."""
    for el in root.iter():
        if el.tail and not el.tail.strip():
            el.tail = rng.choice(["\n", "\n\n  ", " \t\n    ", " "])


def render(page: str, truth: str, seed: int, edit: tuple[str, str] | None = None) -> str:
    """The page as served on one load (seed), optionally with one word of the story edited."""
    rng = random.Random(seed)
    root = html.document_fromstring(page)
    body = root.body
    _add_article_furniture(root, truth, rng)
    year = rng.randint(2019, 2026)
    body.append(
        _element(f"<footer><p>© {year} Example Media Group. All rights reserved.</p></footer>")
    )
    _add_ad_noise(root, rng)
    _add_ad_slots(body, rng)
    _reindent(root, rng)
    wrapper = _element(f'<div class="page-wrap css-{rng.getrandbits(24):06x}"></div>')
    wrapper.extend(list(body))
    body.append(wrapper)
    if edit is not None:
        _replace_word(root, *edit)
    return str(html.tostring(root, encoding="unicode"))


# --- edits ---------------------------------------------------------------------------------


def _text_nodes(root: etree._Element) -> list[tuple[etree._Element, str]]:
    """(element, "text" or "tail") for every text node that a reader sees."""
    nodes = []
    for el in root.iter():
        # a comment's or script's own text is not prose, but what follows it is
        if isinstance(el.tag, str) and el.tag not in NOT_PROSE:
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
        for match in re.finditer(r"[^\W\d_]{6,}", line):
            if len(re.findall(rf"\b{match.group()}\b", comparable)) == 1:
                return match.group()
    return None


# --- tests ---------------------------------------------------------------------------------


@cache
def _plain(page_id: str) -> Extracted:
    page, url, _ = load_page(page_id)
    return extract_article(page, url)


def _shingles(text: str) -> Counter[tuple[str, ...]]:
    tokens = re.findall(r"\w+", text)
    return Counter(tuple(tokens[i : i + 4]) for i in range(max(1, len(tokens) - 3)) if tokens)


def test_extraction_quality_matches_the_published_metric() -> None:
    """Word 4-gram shingles, precision and recall averaged per page, F1 from the averages
    (the article-extraction-benchmark's metric). Measured 0.975 with the chosen options."""
    precisions, recalls = [], []
    for page_id in _page_ids():
        _, _, truth = load_page(page_id)
        got, want = _shingles(_plain(page_id).text), _shingles(truth)
        hits = sum((got & want).values())
        precisions.append(hits / max(sum(got.values()), 1))
        recalls.append(hits / max(sum(want.values()), 1))
    precision, recall = statistics.mean(precisions), statistics.mean(recalls)
    f1 = 2 * precision * recall / (precision + recall)
    print(f"\nextraction F1 {f1:.3f} (precision {precision:.3f}, recall {recall:.3f})")
    assert f1 >= 0.96, f"F1 {f1:.3f} (precision {precision:.3f}, recall {recall:.3f})"


def _compared(page: str, url: str) -> str:
    extracted = extract_article(page, url)
    return compared_text(extracted.text, extracted.extra)


@pytest.mark.parametrize("page_id", _page_ids(), ids=lambda page_id: page_id[:10])
def test_page_is_stable_under_churn_and_shows_an_edit(page_id: str) -> None:
    page, url, truth = load_page(page_id)
    assert _plain(page_id).text.strip(), "no text from the unmodified page"

    first = _compared(render(page, truth, seed=1), url)
    second = _compared(render(page, truth, seed=2), url)
    assert first, "churned page extracted to nothing comparable"
    assert first == second, "furniture churn changed the comparable text"

    word = pick_edit_word(second, truth)
    assert word is not None, "no ground-truth word to edit in the extracted text"
    edited = _compared(render(page, truth, seed=2, edit=(word, EDITED_WORD)), url)
    assert edited != second
    assert EDITED_WORD in edited
    assert len(re.findall(rf"\b{word}\b", edited)) == 0
    change = compute_change("", second, "", edited)  # and the diff shows exactly that edit
    assert [text.strip() for text in change.removed] == [word]
    assert [text.strip() for text in change.added] == [EDITED_WORD]


def test_same_page_extracts_identically_twice_from_str_and_bytes() -> None:
    for page_id in _page_ids()[:10]:
        page, url, _ = load_page(page_id)
        assert extract_article(page.encode("utf-8"), url) == _plain(page_id)


# --- recall past the extractor -------------------------------------------------------------

# The one true paragraph still missing from the compared text (bench/recall_bench.py lists
# it): a headline in a "Story Timeline" list of links after the story, which the benchmark
# counts as article text. A list of headline links is what a related-stories box is made of,
# and those change on every load: the recall rule leaves them out on purpose.
RELATED_LIST_PARAGRAPHS = 1


def _starts(truth: str) -> list[str]:
    """First eight words of each true paragraph of 12+ words (the issue's metric)."""
    long = (line for line in truth.split("\n") if len(re.findall(r"\w+", line)) >= 12)
    return [" ".join(re.findall(r"\w+", normalise(p).casefold())[:8]) for p in long]


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", normalise(text).casefold()))


def test_compared_text_holds_the_paragraphs_the_extractor_dropped() -> None:
    missing_before = missing_after = 0
    for page_id in _page_ids():
        _, _, truth = load_page(page_id)
        plain = _plain(page_id)
        before, after = _words(plain.text), _words(compared_text(plain.text, plain.extra))
        missing_before += sum(start not in before for start in _starts(truth))
        missing_after += sum(start not in after for start in _starts(truth))
    print(
        f"\nparagraph starts missing: {missing_before} in the extracted text, "
        f"{missing_after} in the compared text"
    )
    assert missing_after <= RELATED_LIST_PARAGRAPHS < missing_before


def _recalled_lines(extracted: Extracted) -> list[str]:
    """The lines the compared text has beyond the body's own: the dropped paragraphs."""
    body = set(comparable_text(extracted.text).split("\n"))
    compared = compared_text(extracted.text, extracted.extra).split("\n")
    return [line for line in compared if line not in body]


def _word_to_edit(line: str, compared: str, page: str) -> str | None:
    """A word of ``line`` the compared text has once: the edit (made wherever the page prints
    the word, as a CMS does) shows in that paragraph alone. The page must print it as a word
    (not glued from two elements' texts)."""
    return next(
        (
            m.group()
            for m in re.finditer(r"[^\W\d_]{6,}", line)
            if len(re.findall(rf"\b{m.group()}\b", compared)) == 1
            and re.search(rf"\b{m.group()}\b", page)
        ),
        None,
    )


@pytest.mark.parametrize("page_id", _page_ids(), ids=lambda page_id: page_id[:10])
def test_an_edit_in_each_dropped_paragraph_shows_and_churn_makes_none(page_id: str) -> None:
    """Every paragraph the compared text holds beyond the extractor's: one word edited in
    it, on a page rendered with furniture churn, shows as exactly that edit."""
    page, url, truth = load_page(page_id)
    recalled = _recalled_lines(_plain(page_id))
    if not recalled:
        pytest.skip("the extractor kept every paragraph of this page")
    second = _compared(render(page, truth, seed=2), url)
    assert _compared(render(page, truth, seed=3), url) == second, "churn made a version"
    words = [word for line in recalled if (word := _word_to_edit(line, second, page))]
    if not words:
        pytest.skip("no word of the dropped paragraphs occurs once in the compared text")
    missed = []
    for word in words:
        edited = _compared(render(page, truth, seed=2, edit=(word, EDITED_WORD)), url)
        change = compute_change("", second, "", edited)
        # Once, or twice where the extractor kept the passage in another shape (less a link,
        # or glued to a heading) and the region's copy differs from it; inside a web address
        # the diff's word is the whole host ("www.example.com"): the edit shows either way.
        removed, added = set(change.removed), set(change.added)
        shown = removed and all(word in text for text in removed)
        if not (shown and added and all(EDITED_WORD in text for text in added)):
            missed.append(word)
    assert not missed, f"edits in dropped paragraphs not shown: {missed}"
