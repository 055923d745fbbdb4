"""Recall past the extractor: the paragraphs of the article's region that trafilatura dropped.

trafilatura keeps what it is sure is the story and drops the rest; on the benchmark pages it
dropped 55 of 2,945 true paragraphs, and an edit there was invisible. This module looks at
the region of the page that holds the paragraphs trafilatura *did* keep (the deepest element
containing most of their text, i.e. their common container in the DOM) and returns every
prose block inside it that the extracted text lacks. One general rule, no per-site selector.

What keeps page furniture out of it:

* only the story's own container is read, never the page around it (menus, footers, the
  "most read" rail beside it);
* a block must be prose: at least ``MIN_WORDS`` words, mostly not link text (teaser lists and
  "related" boxes are links), not inside nav/aside/footer/form/header. A ``<p>`` that is all
  link text counts only where the story's own paragraphs sit (beside a kept one) and when it
  reads as the author's: a cited source printed as its address, or sentences (a promo
  written as prose), never a headline;
* the result then goes through the same furniture filters as the body
  (:func:`watcher.pipeline.normalise.compared_text`): stamps, counters, newsletter boxes,
  lines learned to recur across a site.

It reuses the tree the extractor parsed (trafilatura works on its own copy): no second parse.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# lxml ships no type information, and the mypy config only exempts the packages it lists.
from lxml import etree  # type: ignore[import-untyped]

from watcher.pipeline.normalise import is_generic_furniture, normalise

# Blocks whose text is one paragraph: a prose block holding no other, or a div or section
# holding no block at all (text set with <br>s, a CMS's bare paragraphs).
_PROSE = ("p", "li", "blockquote", "pre", "dd", "dt", "td", "th", "h2", "h3", "h4", "h5", "h6")
_CONTAINERS = ("div", "section", "article", "main")
_BLOCKS = (*_PROSE, *_CONTAINERS, "ul", "ol", "table", "figure")
_BLOCK_SET = frozenset(_BLOCKS)
_PROSE_SET = frozenset(_PROSE)
_CONTAINER_SET = frozenset(_CONTAINERS)
_NOT_PROSE = frozenset(
    [
        "script",
        "style",
        "noscript",
        "template",
        "svg",
        "iframe",
        "object",
        "button",
        "select",
        "textarea",
        "option",
    ]
)
_OUTSIDE_STORY = frozenset(["nav", "aside", "footer", "form", "header", "menu"])
# Fewer words than this is a label, a caption or a teaser more often than a paragraph.
MIN_WORDS = 8
# A block that is mostly link text is a teaser or a list of links, not prose.
MAX_LINK_SHARE = 0.5
# A paragraph all link text must be this long to read as prose (see _is_linked_paragraph).
LINKED_PROSE_WORDS = 12
# The container is the deepest element holding this share of the kept paragraphs' text.
COVER = 0.8
# A sentence this much of whose word triples the body has is shown already.
SHOWN_SHARE = 0.6
# Kept blocks shorter than this do not vote for the container ("Share", a date).
ANCHOR_CHARS = 30


def fold(text: str) -> str:
    """``text`` normalised, casefolded, its whitespace one space: what recall compares."""
    # ASCII has nothing for normalise to change but whitespace, which this folds anyway:
    # the same result without it (a property test holds the two equal).
    plain = text if text.isascii() else normalise(text)
    return " ".join(plain.casefold().split())


def _walked_text(element: etree._Element) -> str:
    """The text a reader sees in ``element`` (no scripts, styles, comments), walked node by
    node: what :func:`_visible_text` falls back to where a script or a style sits inside."""
    parts: list[str] = []
    # iterwalk, not recursion: hostile nesting depth cannot reach the recursion limit.
    walker = etree.iterwalk(element, events=("start", "end"))
    for event, node in walker:
        prose = isinstance(node.tag, str) and node.tag not in _NOT_PROSE
        if event == "start":
            if not prose and node is not element:
                walker.skip_subtree()
            elif prose:
                parts.append(node.text or "")
        elif node is not element:
            parts.append(node.tail or "")
    return " ".join("".join(parts).split())


def _visible_text(element: etree._Element, unseen: set[etree._Element]) -> str:
    """The text a reader sees in ``element``; ``unseen``: the elements holding a script, a
    style or the like (:func:`_unseen_holders`). Comments are no text nodes, so elsewhere
    all its text nodes joined (libxml2's text serialisation, in C: a third cheaper than
    the XPath string value, the same text) is that text, instead of walked in Python."""
    if element in unseen:
        return _walked_text(element)
    return _joined_text(element)


def _joined_text(element: etree._Element) -> str:
    return " ".join(etree.tostring(element, method="text", encoding=str, with_tail=False).split())


def _unseen_holders(root: etree._Element) -> set[etree._Element]:
    return _ancestors(root.iter(*_NOT_PROSE))


def _paragraph_blocks(
    root: etree._Element, unseen: set[etree._Element]
) -> Iterator[tuple[etree._Element, str]]:
    """(element, visible text) of every block holding one paragraph, in document order."""
    blocks = list(root.iter(*_BLOCKS))
    holds_block = _ancestors(blocks)
    holds_prose = _ancestors(block for block in blocks if block.tag in _PROSE_SET)
    for element in blocks:
        tag = element.tag
        if tag in _PROSE_SET:
            if element in holds_prose:  # innermost only: a <li> of <p>s yields the <p>s
                continue
        elif tag not in _CONTAINER_SET or element in holds_block:
            continue
        if text := _visible_text(element, unseen):
            yield element, text


def _ancestors(elements: Iterable[etree._Element]) -> set[etree._Element]:
    """Every element that holds one of ``elements``: one walk up from each, stopping where
    an earlier walk passed (a search below every block was a third of the stage)."""
    found: set[etree._Element] = set()
    for element in elements:
        for ancestor in element.iterancestors():
            if ancestor in found:
                break
            found.add(ancestor)
    return found


def _link_chars(element: etree._Element) -> int:
    return sum(len(" ".join(a.text_content().split())) for a in element.iter("a"))


def _loose_runs(element: etree._Element, unseen: set[etree._Element]) -> Iterator[tuple[str, int]]:
    """(text, link characters) held directly by a block that also holds blocks: the runs
    between its blocks."""
    run, links = [element.text or ""], 0
    for child in element:
        if isinstance(child.tag, str) and child.tag in _BLOCK_SET:
            yield " ".join("".join(run).split()), links
            run, links = [], 0
        elif isinstance(child.tag, str) and child.tag not in _NOT_PROSE:
            run.append(_visible_text(child, unseen))
            links += _link_chars(child)
        run.append(child.tail or "")
    yield " ".join("".join(run).split()), links


def _container(blocks: list[tuple[etree._Element, str]], kept: list[bool]) -> etree._Element | None:
    """The deepest element holding ``COVER`` of the kept blocks' text (``kept``: kept by
    the extractor and at least ``ANCHOR_CHARS`` long)."""
    weight: dict[etree._Element, int] = {}
    depth: dict[etree._Element, int] = {}
    total = 0
    for (element, text), is_kept in zip(blocks, kept, strict=True):
        if not is_kept:
            continue
        total += len(text)
        ancestors = list(element.iterancestors())
        for level, ancestor in enumerate(reversed(ancestors)):
            weight[ancestor] = weight.get(ancestor, 0) + len(text)
            depth[ancestor] = level
    covering = [element for element, w in weight.items() if total and w >= COVER * total]
    return max(covering, key=depth.__getitem__, default=None)


@dataclass(frozen=True)
class _Region:
    """Where the story is: its container, and the elements that directly hold the paragraphs
    the extractor kept (the story's flow, where its own paragraphs sit side by side)."""

    container: etree._Element
    flow: frozenset[etree._Element]


def _in_story(element: etree._Element, container: etree._Element) -> bool:
    for ancestor in element.iterancestors():
        if ancestor is container:
            break
        if ancestor.tag in _OUTSIDE_STORY or ancestor.get("hidden") is not None:
            return False
    return True


def _is_prose(element: etree._Element, text: str, links: int, region: _Region) -> bool:
    if not _in_story(element, region.container):
        return False
    if len(text.split()) >= MIN_WORDS and links <= MAX_LINK_SHARE * len(text):
        return True
    return _is_linked_paragraph(element, text, region.flow)


# A sentence ends: a lowercase letter, then ".", "?" or "!" before a space or the end ("U.S."
# and "ID.3" end none).
_SENTENCE_STOP = re.compile(r"([^\W\d_])[.!?](?=\s|$)")
_ADDRESS = re.compile(r"https?://\S+")


def _is_linked_paragraph(
    element: etree._Element, text: str, flow: frozenset[etree._Element]
) -> bool:
    """A <p> of the story's flow whose text is mostly a link is the author's paragraph still
    when it reads as one: a cited address (the source, printed as a URL) or sentences (a
    promo written as prose: long, mostly lowercase words, a sentence ending in it).

    Menus, teaser lists and "related" boxes are none of these: their links are list items or
    headings in boxes of their own, or headlines (no sentence ends in a headline).
    """
    if element.tag != "p" or element.getparent() not in flow:
        return False
    if next(element.iterancestors("a"), None) is not None:  # a teaser: the block is in a link
        return False
    if _ADDRESS.fullmatch(text):
        return True
    words = text.split()
    lowercase = sum(word[:1].islower() for word in words)
    stops = (m for m in _SENTENCE_STOP.finditer(text) if m.group(1).islower())
    return len(words) >= LINKED_PROSE_WORDS and 2 * lowercase >= len(words) and any(stops)


def dropped_paragraphs(tree: etree._Element, body: str) -> str:
    """Prose of the article's container missing from ``body``, one paragraph per line."""
    folded_body = fold(body.replace("\n- ", "\n"))
    unseen = _unseen_holders(tree)
    blocks = list(_paragraph_blocks(tree, unseen))
    # Only blocks long enough to vote for the container (and the flow) need the question.
    kept = [len(text) >= ANCHOR_CHARS and fold(text) in folded_body for _, text in blocks]
    container = _container(blocks, kept)
    if container is None:
        return ""
    region = _Region(container, _flow(blocks, kept))
    leaves = dict(blocks)  # element -> its visible text, worked out once
    # A kept block in one part is shown whole: nothing of it can be unshown (most of a
    # story's blocks; asking again was a fifth of this stage).
    shown_whole = {
        element
        for (element, text), is_kept in zip(blocks, kept, strict=True)
        if is_kept and not _in_parts(text)
    }
    shown = _Shown(folded_body)
    found: list[str] = []
    seen: set[str] = set()
    for element in container.iter(*_PROSE, *_CONTAINERS):
        if element in shown_whole:
            continue
        if element in leaves:
            # Its links are counted only if some of it is unshown (most of a story is shown).
            texts: Iterable[tuple[str, int | None]] = [(leaves[element], None)]
        else:
            texts = _loose_runs(element, unseen)
        for whole, links in texts:
            text = _unshown(_without_furniture_parts(whole), shown)
            folded = fold(text)
            if not folded or folded in seen:
                continue
            if links is None:
                links = _link_chars(element)
            if _is_prose(element, text, links, region):
                seen.add(folded)
                found.append(text)
    return "\n".join(found)


def _flow(blocks: list[tuple[etree._Element, str]], kept: list[bool]) -> frozenset[etree._Element]:
    """The parents of the kept paragraphs (those long enough to vote for the container)."""
    return frozenset(
        element.getparent() for (element, _), is_kept in zip(blocks, kept, strict=True) if is_kept
    )


_PART_SEPARATOR = re.compile(r"\s+[·|•]\s+")


def _in_parts(text: str) -> bool:
    """Whether ``text`` joins parts, as a byline line does (see _without_furniture_parts)."""
    return _PART_SEPARATOR.search(text) is not None


def _without_furniture_parts(text: str) -> str:
    """A byline line joins its parts with "·" or "|" ("By Staff · Updated 5 minutes ago ·
    1,234 views"): the parts that are furniture go, so the rest is judged on its own."""
    if not _in_parts(text):
        return text
    parts = _PART_SEPARATOR.split(text)
    return " · ".join(part for part in parts if not is_generic_furniture(part))


_SENTENCE_END = re.compile(r"(?<=[.!?\"”])\s+")


def _trigrams(folded: str) -> set[tuple[str, ...]]:
    words = folded.split()
    return set(zip(words, words[1:], words[2:], strict=False))


class _Shown:
    """The body as extracted, folded, to ask whether a sentence is in it already."""

    def __init__(self, folded: str) -> None:
        self.folded = folded

    @functools.cached_property
    def trigrams(self) -> set[tuple[str, ...]]:
        # Made on the first sentence not in the body word for word: many pages have none.
        return _trigrams(self.folded)

    def shows(self, sentence: str) -> bool:
        folded = fold(sentence)
        if folded in self.folded:
            return True
        # Mostly there: the extractor kept the sentence less a link or an inline box.
        grams = _trigrams(folded)
        return bool(grams) and len(grams & self.trigrams) >= SHOWN_SHARE * len(grams)


def _unshown(text: str, body: _Shown) -> str:
    """``text`` less its sentences the body already shows: a block that merges a kept
    paragraph with a dropped one adds only the dropped one (an edit must show once)."""
    if fold(text) in body.folded:
        return ""
    return " ".join(s for s in _SENTENCE_END.split(text) if not body.shows(s))
