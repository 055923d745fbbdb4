"""Recall past the extractor on hand-written pages: which paragraphs trafilatura drops are
compared beside the body, and which link blocks stay out (watcher.pipeline.recall)."""

from __future__ import annotations

from watcher.pipeline.extract import extract_article
from watcher.pipeline.normalise import compared_text, normalise

URL = "https://news.example.org/world/2026/truce-talks"
STORY = [
    "Negotiators from both sides met in Doha on Tuesday for a third round of talks on "
    "extending the truce, which has held since early March despite sporadic shelling.",
    "The mediators said a draft agreement would allow aid convoys through two crossings and "
    "provide for the exchange of 40 detainees before the end of the month.",
    "One diplomat said the sides were closer than they had ever been, asking not to be named "
    "because the talks were confidential. Another cautioned that the draft had collapsed twice.",
    "The health ministry has since published a full list of the victims of the first week, "
    "and said it would revise the figures again once the crossings reopen to observers.",
]
PROMO = (
    "Need help reading the draft? Our explainer walks through every clause of the agreement "
    "and what it would change »"
)
SOURCE = "https://www.example.org/2026/03/draft-agreement-full-text.html"
RELATED = ["Storm leaves thousands without power", "Council approves new budget after debate"]


def page(promo: str = PROMO, related: list[str] = RELATED) -> str:
    story = [f"<p>{p}</p>" for p in STORY]
    story.insert(2, f'<p><em><a href="/explainer">{promo}</a></em></p>')
    story.append(f'<p><a href="{SOURCE}">{SOURCE}</a></p>')
    links = "".join(f'<li><a href="/s/{i}">{h}</a></li>' for i, h in enumerate(related))
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Truce talks resume in Doha</title></head><body>
<main><article><h1>Truce talks resume in Doha</h1>
<div class="body">{"".join(story)}</div>
<div class="timeline"><h2>Story Timeline</h2><ul>{links}</ul></div>
</article></main></body></html>"""


def test_link_only_paragraphs_of_the_story_are_compared_and_link_lists_are_not() -> None:
    extracted = extract_article(page(), URL)
    compared = compared_text(extracted.text, extracted.extra)
    assert normalise(PROMO) in compared  # sentences, though all one link
    assert SOURCE in compared  # the cited source, printed as its address
    assert not any(headline in compared for headline in RELATED)


def test_an_edit_in_a_linked_paragraph_changes_the_compared_text_and_the_list_does_not() -> None:
    def compared(html: str) -> str:
        extracted = extract_article(html, URL)
        return compared_text(extracted.text, extracted.extra)

    base = compared(page())
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
