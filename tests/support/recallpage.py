"""A news page with a paragraph trafilatura drops: a promo written as sentences, all one link,
between the story's paragraphs. Its edits are visible only past the extractor
(watcher.pipeline.recall). The page churns like a real one when given a random source: a
clock line and a rotating list of headline links after the story."""

from __future__ import annotations

import random

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
HEADLINES = [
    "Storm leaves thousands without power",
    "Council approves new budget after debate",
    "Markets slide as traders weigh rate outlook",
    "Transit strike called off at the last minute",
]


def recall_page(
    promo: str = PROMO,
    related: list[str] | None = None,
    rng: random.Random | None = None,
    title: str = "Truce talks resume in Doha",
    paragraphs: list[str] = STORY,
) -> str:
    """The page; ``rng`` draws the clock and the related headlines (``related`` else)."""
    story = [f"<p>{p}</p>" for p in paragraphs]
    story.insert(2, f'<p><em><a href="/explainer">{promo}</a></em></p>')
    story.append(f'<p><a href="{SOURCE}">{SOURCE}</a></p>')
    if rng is not None:
        story.insert(0, f'<p class="stamp">Updated {rng.randint(2, 59)} minutes ago</p>')
        related = rng.sample(HEADLINES, 2)
    links = "".join(f'<li><a href="/s/{i}">{h}</a></li>' for i, h in enumerate(related or []))
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{title}</title></head><body>
<main><article><h1>{title}</h1>
<div class="body">{"".join(story)}</div>
<div class="timeline"><h2>Story Timeline</h2><ul>{links}</ul></div>
</article></main></body></html>"""
