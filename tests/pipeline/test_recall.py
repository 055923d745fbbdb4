"""Recall past the extractor on hand-written pages: which paragraphs trafilatura drops are
compared beside the body, and which link blocks stay out (watcher.pipeline.recall)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from support.recallpage import PROMO, SOURCE, STORY
from support.recallpage import recall_page as page
from watcher.pipeline.extract import extract_article
from watcher.pipeline.htmltree import parse_page
from watcher.pipeline.normalise import compared_text, normalise
from watcher.pipeline.recall import _joined_text, _walked_text, dropped_paragraphs, fold

URL = "https://news.example.org/world/2026/truce-talks"
RELATED = ["Storm leaves thousands without power", "Council approves new budget after debate"]


def test_link_only_paragraphs_of_the_story_are_compared_and_link_lists_are_not() -> None:
    extracted = extract_article(page(related=RELATED), URL)
    compared = compared_text(extracted.text, extracted.extra)
    assert normalise(PROMO) in compared  # sentences, though all one link
    assert SOURCE in compared  # the cited source, printed as its address
    assert not any(headline in compared for headline in RELATED)


def test_an_edit_in_a_linked_paragraph_changes_the_compared_text_and_the_list_does_not() -> None:
    def compared(html: str) -> str:
        extracted = extract_article(html, URL)
        return compared_text(extracted.text, extracted.extra)

    base = compared(page(related=RELATED))
    assert compared(page(related=["Markets slide as traders weigh rate outlook"])) == base
    assert compared(page(promo=PROMO.replace("every clause", "each clause"))) != base


def test_a_headline_link_between_paragraphs_is_not_prose() -> None:
    headline = "Volkswagen bets it all on an electric future as production begins in Zwickau"
    extracted = extract_article(page(promo=headline), URL)
    assert headline not in compared_text(extracted.text, extracted.extra)


def test_a_hover_card_inside_a_sentence_leaves_the_sentence_whole() -> None:
    card = (
        '<span class="card"><a href="/people/noem">Kristi Noem</a><span class="pop"><span>'
        '<img src="/noem.jpg" alt=""><a href="/people/noem">Kristi Lynn Noem</a>'
        '<a href="/news/1">South Dakota drops pipeline protest laws</a> '
        '<a href="/news/2">New South Dakota law goes into effect</a>'
        '<a href="/people/noem">MORE</a></span></span></span>'
    )
    sentence = f"<p>South Dakota Gov. {card} (R) is defending the state's new campaign.</p>"
    html = page().replace(f"<p>{STORY[0]}</p>", f"<p>{STORY[0]}</p>{sentence}")
    text = extract_article(html, URL).text
    assert "South Dakota Gov. Kristi Noem (R) is defending the state's new campaign." in text
    assert "pipeline protest" not in text and "MORE" not in text


def test_links_with_words_between_them_are_prose() -> None:
    names = '<span><a href="/p/a">Ann Lee</a>, <a href="/p/b">Bo Chen</a></span>'
    sentence = f"<p>The talks were led by {names} for the two delegations this week.</p>"
    html = page().replace(f"<p>{STORY[0]}</p>", f"<p>{STORY[0]}</p>{sentence}")
    assert "led by Ann Lee, Bo Chen for the two" in extract_article(html, URL).text


@settings(max_examples=400)
@given(st.one_of(st.text(), st.text(alphabet=st.characters(max_codepoint=127))))
def test_the_fold_is_normalise_casefolded_with_its_whitespace_one_space(text: str) -> None:
    assert fold(text) == " ".join(normalise(text).casefold().split())


def test_a_dropped_paragraph_reads_without_the_script_and_the_comment_inside_it() -> None:
    kept = [f"{sentence} It was the {n} day of the talks." for n, sentence in enumerate(STORY)]
    dropped = (
        "<p>Delegates said the draft <script>track('truce');</script>was read<!-- editor: check -->"
        " aloud twice before the vote in the hall.</p>"
    )
    story = "".join(f"<p>{line}</p>" for line in kept)
    tree = parse_page(f"<html><body><article>{story}<div>{dropped}</div></article></body></html>")
    assert tree is not None
    assert dropped_paragraphs(tree, "\n".join(kept)) == (
        "Delegates said the draft was read aloud twice before the vote in the hall."
    )


_INLINE_MARKUP = st.lists(
    st.sampled_from(["word ", " ", "<b>", "</b>", "<a href='/x'>", "</a>", "<!-- c -->", "<br>"]),
    max_size=20,
)


@given(_INLINE_MARKUP)
def test_a_block_without_scripts_reads_as_its_string_value(parts: list[str]) -> None:
    # The law the recall stage's fast path rests on: comments are no text nodes.
    tree = parse_page(f"<html><body><p>{''.join(parts)} end</p></body></html>")
    assert tree is not None
    paragraph = next(tree.iter("p"))
    assert _joined_text(paragraph) == _walked_text(paragraph)
