"""The stories of ``watcher demo``'s simulated newsroom (fictional places, people and events)
and the edits its editor makes to them. Pure: no I/O, no threads (see :mod:`watcher.demo.newsroom`).

Each draft carries what the editor needs to make real edits: other headlines to rewrite it
with, other wordings of its first quotation, and paragraphs to add later. Every draft has a
number in its body (the editor revises the first one) and a quotation in “curly quotes”
(the editor rewords the first one); ``tests/test_demo.py`` checks both. Headlines carry no
numbers, so a revised figure never contradicts its headline.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Draft:
    slug: str
    headlines: tuple[str, ...]  # the first is published; the others are rewrites
    paragraphs: tuple[str, ...]
    quotes: tuple[str, ...]  # wordings of the first quotation, the published one first
    updates: tuple[str, ...]  # paragraphs the editor adds later


@dataclass
class Story:
    """A published story as it reads now."""

    draft: Draft
    published: datetime
    title: str
    paragraphs: list[str]
    unused: list[str]  # the draft's updates not in the text (yet, or again)
    headline: int = 0  # which of the draft's headlines is shown
    quote: int = 0  # which wording of the quotation is shown
    revision: int = 0

    @classmethod
    def publish(cls, draft: Draft, when: datetime) -> Story:
        return cls(draft, when, draft.headlines[0], list(draft.paragraphs), list(draft.updates))

    @property
    def slug(self) -> str:
        return self.draft.slug

    @property
    def path(self) -> str:
        return f"/news/{self.slug}.html"


@dataclass(frozen=True)
class Edit:
    kind: str  # one of EDIT_KINDS
    slug: str
    title: str  # the headline after the edit
    what: str  # for people: "revised a number (38 → 41)"


_NUMBER = re.compile(r"\b\d+\b")
# A quotation in curly quotes; the punctuation closing it ("…agreed,” said) stays.
_QUOTE = re.compile(r"“[^”]*?(?P<stop>[,.;?!]?)”")
# Steps a figure is revised by, in turn picked at random: mostly up, sometimes down.
_REVISIONS = (3, -1, 2, 5, -2, 4)


def _revise_number(story: Story, rng: random.Random) -> str:
    index, match = _first(_NUMBER, story.paragraphs)
    old = int(match.group())
    step = rng.choice(_REVISIONS)
    new = old + step if old + step > 0 else old + abs(step)
    story.paragraphs[index] = _splice(story.paragraphs[index], match, str(new))
    return f"revised a number ({old} → {new})"


def _change_quote(story: Story, rng: random.Random) -> str:
    index, match = _first(_QUOTE, story.paragraphs)
    story.quote = (story.quote + 1) % len(story.draft.quotes)
    wording = f"“{story.draft.quotes[story.quote]}{match['stop']}”"
    story.paragraphs[index] = _splice(story.paragraphs[index], match, wording)
    return "changed a quote"


def _add_paragraph(story: Story, rng: random.Random) -> str:
    if story.unused:
        story.paragraphs.append(story.unused.pop(0))
        return "added a paragraph"
    # Every update is in: quietly take the oldest out again, an edit watcher must catch too.
    oldest = next(p for p in story.draft.updates if p in story.paragraphs)
    story.paragraphs.remove(oldest)
    story.unused.append(oldest)
    return "took a paragraph out"


def _rewrite_headline(story: Story, rng: random.Random) -> str:
    old = story.title
    story.headline = (story.headline + 1) % len(story.draft.headlines)
    story.title = story.draft.headlines[story.headline]
    return f"rewrote the headline (was “{old}”)"


# The kinds of edit, in the order the editor makes them.
EDITS: dict[str, Callable[[Story, random.Random], str]] = {
    "number": _revise_number,
    "quote": _change_quote,
    "paragraph": _add_paragraph,
    "headline": _rewrite_headline,
}
EDIT_KINDS = tuple(EDITS)


def _first(pattern: re.Pattern[str], paragraphs: Sequence[str]) -> tuple[int, re.Match[str]]:
    for index, paragraph in enumerate(paragraphs):
        if match := pattern.search(paragraph):
            return index, match
    raise ValueError(f"no match for {pattern.pattern!r} in the story")


def _splice(text: str, match: re.Match[str], replacement: str) -> str:
    return text[: match.start()] + replacement + text[match.end() :]


# The first three are on the site when the demo starts; the editor publishes the rest.
DRAFTS: tuple[Draft, ...] = (
    Draft(
        slug="marenne-ceasefire-talks",
        headlines=(
            "Cease-fire talks resume in Marenne as aid convoys wait at the border",
            "Marenne cease-fire talks stall over prisoner exchange",
            "Mediators report progress in Marenne cease-fire talks",
        ),
        paragraphs=(
            "Negotiators for the two sides returned to the table in Marenne on Tuesday, hoping "
            "to agree a cease-fire before snow closes the mountain roads to the besieged "
            "districts.",
            "At least 38 lorries carrying food, fuel and medicine were waiting at the Kessel "
            "crossing, according to the regional aid coordinator, some of them for more than "
            "a week.",
            "“We are closer than we have been in months, but nothing is agreed until "
            "everything is agreed,” said Ilse Varga, the mediator who has led the talks since "
            "the spring.",
            "Earlier rounds broke down over the order of a prisoner exchange and over the "
            "withdrawal of heavy weapons from the hills above the old town.",
            "Residents of the eastern districts said shelling had eased since the weekend, "
            "although a market was hit on Monday and two people were wounded.",
        ),
        quotes=(
            "We are closer than we have been in months, but nothing is agreed until everything "
            "is agreed",
            "Real progress has been made, but serious gaps remain on the prisoner exchange",
            "Both delegations have shown flexibility, and I expect a draft text within days",
        ),
        updates=(
            "Late on Tuesday, a spokesman for the northern delegation said it would not sign "
            "any text that left the river bridges under the control of foreign troops.",
            "Aid officials said a dozen of the waiting lorries had been allowed through after "
            "an overnight inspection, the first to reach the city in nine days.",
            "The mediators asked both sides to keep the draft confidential until it is "
            "presented to the full delegations.",
        ),
    ),
    Draft(
        slug="askel-valley-floods",
        headlines=(
            "Floods sweep the Askel valley as rivers burst their banks",
            "Askel valley floods: rescuers search for the missing",
            "Thousands flee rising water in the Askel valley",
        ),
        paragraphs=(
            "Rescue teams in the Askel valley worked through the night after two days of "
            "torrential rain sent rivers over their banks and cut off dozens of villages.",
            "The provincial emergency office said 14 people had died and about three thousand "
            "had been moved to schools and sports halls on higher ground.",
            "“The water came up through the floor in less than an hour; we left with nothing "
            "but the children,” said Marta Olen, who spent the night in a school gym in Brenz.",
            "Forecasters expect the rain to ease by Thursday, but warned that the reservoir "
            "above Hollin remained close to its limit.",
        ),
        quotes=(
            "The water came up through the floor in less than an hour; we left with nothing "
            "but the children",
            "We had ten minutes to get out, and the road was already under water",
            "Nobody warned us; the sirens in our village have not worked for years",
        ),
        updates=(
            "The army said it had sent boats and four helicopters, and that relief flights "
            "would continue through the night.",
            "Relief agencies said the cease-fire in neighbouring Marenne had freed helicopters "
            "that were badly needed for the rescue effort.",
            "The governor of the province said an inquiry would examine why the flood warnings "
            "reached some villages only after the water did.",
        ),
    ),
    Draft(
        slug="central-bank-rates",
        headlines=(
            "Central bank raises interest rates for the third time this year",
            "Central bank lifts rates again as prices keep climbing",
            "Rate rise puts pressure on households already stretched by food prices",
        ),
        paragraphs=(
            "The central bank raised its main interest rate by a quarter of a point on "
            "Wednesday, saying that prices were still rising too fast for comfort.",
            "Annual inflation reached 7 percent in October, driven by the cost of food and "
            "heating, according to the national statistics office.",
            "“We will do what it takes to bring inflation back to target, even if that means "
            "a slower year for growth,” the bank's governor, Paul Eskel, told reporters.",
            "Business groups warned that higher borrowing costs would weigh on small firms, "
            "many of which are still repaying loans taken out in leaner years.",
            "The decision was backed by six of the nine members of the rate-setting "
            "committee; three had voted to hold rates.",
        ),
        quotes=(
            "We will do what it takes to bring inflation back to target, even if that means a "
            "slower year for growth",
            "We are determined to bring inflation down, and we will not stop halfway",
            "The worst of the price rises may be behind us, but it is too early to relax",
        ),
        updates=(
            "Mortgage lenders said they expected to pass the increase on to borrowers within "
            "a month.",
            "The opposition's finance spokesman called the rise a tax on families and urged "
            "the government to cut fuel duty instead.",
        ),
    ),
    Draft(
        slug="northern-rail-strike",
        headlines=(
            "Rail strike halts trains across the north",
            "Rail unions and operators return to talks as the strike bites",
            "Commuters stranded as the rail strike enters its second day",
        ),
        paragraphs=(
            "Most train services in the north were cancelled on Thursday as drivers and "
            "signal staff walked out in a dispute over pay and working hours.",
            "The operators said 412 services had been cancelled by midday and advised "
            "passengers to travel only if their journey was essential.",
            "“Nobody wants to strike, but our members have had enough of being taken for "
            "granted,” said Ana Brodsky, general secretary of the drivers' union.",
            "Road traffic into the regional capital was heavier than usual, and bus companies "
            "added coaches on the main commuter routes.",
        ),
        quotes=(
            "Nobody wants to strike, but our members have had enough of being taken for granted",
            "We are ready to talk tonight if the operators come with a serious offer",
            "Our members did not take this decision lightly, and they will not back down now",
        ),
        updates=(
            "The transport minister said she would meet both sides on Friday and urged them "
            "to accept mediation.",
            "A spokesman for the operators said a new offer would be put to the union before "
            "the weekend.",
        ),
    ),
    Draft(
        slug="marenne-ceasefire-monitors",
        headlines=(
            "Observers to monitor the Marenne cease-fire from Monday",
            "Monitors head to Marenne as the cease-fire takes hold",
            "Marenne truce: observers deploy along the front line",
        ),
        paragraphs=(
            "A mission of 60 unarmed observers will begin patrolling the front line around "
            "Marenne on Monday, the mediators announced, a day after the cease-fire came "
            "into force.",
            "The observers will report violations to a joint commission of officers from both "
            "sides, which is to meet every morning in the old customs house at Kessel.",
            "“A cease-fire is only as strong as the trust behind it, and trust has to be "
            "watched over,” said Ilse Varga, who brokered the agreement.",
            "Both delegations agreed to open corridors for civilians and aid, though the "
            "timetable for the prisoner exchange remains unsettled.",
        ),
        quotes=(
            "A cease-fire is only as strong as the trust behind it, and trust has to be "
            "watched over",
            "This agreement gives the people of Marenne a chance to sleep through the night",
            "Nobody should mistake a pause in the fighting for peace",
        ),
        updates=(
            "The first patrol reported no violations overnight, the joint commission said.",
            "A convoy of lorries crossed at Kessel on Monday afternoon, escorted by observers.",
        ),
    ),
)

# How many drafts are on the site when the demo starts.
FIRST_EDITION = 3
