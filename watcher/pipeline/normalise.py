"""The text versions are compared on: normalised, and without page furniture.

* ``normalise`` irons out typography and whitespace so that only wording differences remain.
* ``comparable_text`` drops page furniture: lines matched by site-independent recognisers
  (``is_generic_furniture``) and lines whose ``mask_line`` key the store has seen recur across
  a site's articles. Versions are hashed and diffed on this text.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Collection


def word_set(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


# --- normalisation -------------------------------------------------------------------------

_TYPOGRAPHY = {
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2035\u2039\u203a\uff07", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u2036\u00ab\u00bb\uff02", '"'),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d", "-"),
    **dict.fromkeys("\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007", " "),
    **dict.fromkeys("\u2008\u2009\u200a\u202f\u205f\u3000", " "),
    # Invisible: zero-width space, word joiner, BOM, soft hyphen. ZWJ and ZWNJ stay, as they
    # change how Indic, Persian and emoji text reads.
    **dict.fromkeys("\u200b\u2060\ufeff\u00ad", ""),
    "\u2026": "...",
}
# A regex finds the few characters to replace 3x faster than str.translate scans them all.
_TYPOGRAPHIC = re.compile("[" + "".join(_TYPOGRAPHY) + "]")


def _untypographic(match: re.Match[str]) -> str:
    return _TYPOGRAPHY[match.group()]


def normalise(text: str) -> str:
    """Comparison form: NFC, typographic variants unified, whitespace folded, no blank lines."""
    text = unicodedata.normalize("NFC", text)
    if not text.isascii():
        # NFC again after the replacements: dropping a soft hyphen between a letter and its
        # accent makes a new pair to compose. (NFC first turns U+2000/2001 into spaces we
        # map.) Replacements are ASCII or nothing, so a second normalise changes nothing.
        text = unicodedata.normalize("NFC", _TYPOGRAPHIC.sub(_untypographic, text))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


_DIGIT = re.compile(r"\d")


def _mask(plain: str) -> str:
    # A word of letters only holds no digit (no character is both): the search is skipped.
    tokens = plain.casefold().split()
    return " ".join(t if t.isalpha() or _DIGIT.search(t) is None else "0" for t in tokens)


def mask_line(line: str) -> str:
    """Site-furniture key: casefolded comparison form, every token holding a digit -> "0"."""
    return _mask(normalise(line))


def line_keys(text: str) -> frozenset[str]:
    """The mask_line key of every line, for the store to learn what recurs across a site."""
    return frozenset(_mask(line) for line in _normalised_lines(text) if line)


@functools.lru_cache(maxsize=16)
def _normalised_lines(text: str) -> tuple[str, ...]:
    """A text's normalised lines, kept for the few texts in use: judging a new page compares
    its body and learns the body's line keys, and the second normalising was 7% of our own CPU
    per new article (cProfile of a 91-page wave)."""
    return tuple(normalise(text).split("\n"))


# --- generic furniture ---------------------------------------------------------------------

_STAMP_WORDS = word_set("updated update published posted modified edited last first originally")
_DATE_WORDS = word_set(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday "
    "saturday sunday mon tue tues wed thu fri sat sun sec secs second seconds min mins minute "
    "minutes h hr hrs hour hours day days week weeks month months year years utc gmt bst cet "
    "cest eet et est edt ct cst cdt mt mst mdt pt pst pdt ist aest jst z ago at on am pm a.m "
    "p.m just now today yesterday read reading time -"
)
_STAMP_VOCABULARY = _DATE_WORDS | _STAMP_WORDS
_NUMBER_TOKEN = re.compile(r"\d[\d:./+-]*(?:t[\d:.+-]*)?(?:st|nd|rd|th|am|pm|a\.m|p\.m|h|z)?")
_CLOCK = re.compile(r"\d{1,2}[:.]\d{2}(?:[:.]\d{2})?(?:am|pm|a\.m|p\.m|h|z)?")
_COUNTER_WORDS = word_set(
    "view views comment comments share shares like likes read reads reply replies reaction "
    "reactions response responses"
)
_COUNT = re.compile(r"\d[\d,.]*[km]?")
_SHARE_WORDS = word_set("share tweet pin")
_NETWORKS = word_set(
    "facebook twitter x linkedin whatsapp email e-mail mail print pinterest reddit copy link "
    "messenger telegram flipboard sms bluesky threads mastodon"
)
_SHARE_FILLER = word_set("this article story page on via to the with")


def _tokens(folded: str) -> list[str]:
    return [t for t in (token.strip(",;:|•·()[]\"'.!?") for token in folded.split()) if t]


def _is_stamp(tokens: list[str]) -> bool:
    """Time stamps: "Updated 5 minutes ago", "Published 19 Nov 2019, 10:30 GMT", "12:30"."""
    if "by" in tokens and len(tokens) - tokens.index("by") <= 5:
        # "5:45 AM PST 11/19/2019 by Jane Doe": the byline rides along with the stamp.
        tokens = tokens[: tokens.index("by")]
    if not all(token in _STAMP_VOCABULARY or _NUMBER_TOKEN.fullmatch(token) for token in tokens):
        return False
    words = set(tokens)
    number = any(_NUMBER_TOKEN.fullmatch(token) for token in tokens)
    relative = bool(words & {"ago", "now", "today", "yesterday"})
    if words & _STAMP_WORDS:
        return number or relative
    # A bare date ("March 3, 2020") may head a timeline section: it needs a stamp word.
    clock = any(_CLOCK.fullmatch(token) for token in tokens)
    return clock or relative or (number and bool(words & {"read", "reading"}))


def _is_counter(tokens: list[str]) -> bool:
    """Counters: "1,234 views", "12 comments", "Comments (3)", "1.2k shares · 40 likes"."""
    counts = [bool(_COUNT.fullmatch(token)) for token in tokens]
    named = [token in _COUNTER_WORDS for token in tokens]
    return any(counts) and any(named) and all(c or n for c, n in zip(counts, named, strict=True))


def _is_share_bar(tokens: list[str]) -> bool:
    """Share buttons: "Share this article", "Share on Facebook", "Facebook Twitter Email"."""
    words = set(tokens)
    if len(tokens) > 10 or not words <= _SHARE_WORDS | _NETWORKS | _SHARE_FILLER:
        return False
    return bool(words & _SHARE_WORDS) or len(words & _NETWORKS) >= 2


# On the original case: a name between "Copyright" and the year is capitalised, which keeps
# "Copyright law changed in 2019" out.
_COPYRIGHT = re.compile(
    r"(?:©|(?:\((?i:c)\)|(?i:copyright))\s*(?:©\s*)?(?:[A-Z][\w&.,'-]*\s+){0,4}\d{4}\b).{0,100}"
)
# Box headers, after trailing ":", "...", arrows: the whole line is the header.
_BOX_HEADER = re.compile(
    r"most (?:read|popular|viewed|shared|commented|watched)(?: in [\w' -]{1,30}| \w+)?"
    r"|popular(?: now)?|trending(?: now| stories| news)?|more|also|see also|further reading"
    r"|related(?: articles?| stories| news| content| coverage| links| posts| topics| reading)?"
    r"|recommended(?: for you| stories| articles| reading)?|top stories|latest (?:news|stories)"
    r"|you (?:may|might) (?:also )?(?:like|enjoy|be interested in)|up next|what to read next"
    r"|more (?:from|on) [\w' .-]{1,30}|more (?:stories|news|articles|videos)|read (?:more|next)"
    r"|don't miss|editor's picks?"
)
# Whole-line patterns on the casefolded form, anchored or tightly bounded so that a body
# sentence that merely contains one of these words does not match. Joined into one regex:
# a single pass per line.
_LINE_PATTERNS = (
    r"^.{0,80}\ball rights reserved\b.{0,20}$",
    r"^(?:advertisements?|advertising|ads?|sponsored(?: content| links?)?|paid (?:content|post)"
    r"|promoted(?: content)?|partner content|skip (?:advertisement|ad)|ad feedback"
    r"|report this ad|advertise with us)$",
    r"^(?:the )?(?:story|article|content) continues (?:below|after)\b.{0,30}$",
    r"^(?:continue reading (?:below|the main story)|scroll (?:down )?to continue\b.{0,40})$",
    # a link to another story, or the story's tag list
    r"^(?:related|see more|read more|more|also read|read also|see also|recommended|most read"
    r"|filed under|tags?|topics?|categories|category)\s*:.{0,150}$",
    # newsletter boxes
    r"^(?:sign ?up|sign-up|subscribe|register|join|get|receive)\b.{0,120}"
    r"\b(?:newsletters?|inbox|e-?mail (?:updates|alerts))\b.{0,60}$",
    r"^[\w' -]{0,40}\bnewsletters?(?: sign[- ]?up)?$",
    # "subscribe to our channel" boxes
    r"^(?:subscribe to|follow us)\b.{0,60}\b(?:youtube|channel|podcast)\b.{0,80}$",
    r"^(?:thank you|thanks) for (?:signing up|subscribing)\b.{0,100}$",
    r"^by (?:signing up|subscribing|registering|clicking)\b.{0,150}\b(?:agree|privacy|terms)\b",
    r"^(?:enter your e-?mail|please enter a valid e-?mail|invalid e-?mail)\b.{0,60}$",
    # comment widgets and policies
    r"^(?:comments?|commenting|discussion)(?: (?:is|are|has been|have been))?"
    r" (?:now )?(?:closed|disabled|moderated|turned off)\b.{0,120}$",
    r"^(?:please|we)\b[\w' ,]{0,40}\b(?:welcome|reserve|moderate|review|keep|ask|encourage"
    r"|remove|delete)\b.{0,80}\bcomments?\b.{0,120}$",
    r"^(?=.{0,200}$).*\b(?:our|your)\b.*\b(?:comment(?:s|ing)?|community)"
    r" (?:policy|guidelines|rules|standards)\b",
    r"^(?:view|show|hide|load|read|see|open) (?:all |more )?(?:\d+ )?comments?\b.{0,20}$",
    r"^(?:leave|post|add|write) (?:a|your) (?:comment|reply)\b.{0,40}$",
    r"^(?:be the first to (?:comment|reply)|join the (?:conversation|discussion))\b.{0,40}$",
    r"^by (?:commenting|posting a comment|submitting a comment)\b.{0,200}$",
    r"^comments?$",
)
_LINE_FURNITURE = re.compile("|".join(f"(?:{pattern})" for pattern in _LINE_PATTERNS))
_LIST_MARKERS = ("- ", "* ", "• ")


def is_generic_furniture(line: str) -> bool:
    """Site-independent furniture: stamps, clocks, counters, ads, newsletter/comment boxes."""
    return _is_furniture(" ".join(normalise(line).split()))


def _is_furniture(plain: str) -> bool:
    """is_generic_furniture on one line already in comparison form."""
    if plain[:2] in _LIST_MARKERS:
        plain = plain[2:]  # trafilatura writes list items as "- item"
    if not plain or len(plain) > 250:
        return False
    folded = plain.casefold()
    tokens = _tokens(folded)
    short = len(folded) <= 80 and bool(tokens)
    if short and (_is_stamp(tokens) or _is_counter(tokens) or _is_share_bar(tokens)):
        return True
    if _COPYRIGHT.fullmatch(plain) or _BOX_HEADER.fullmatch(folded.rstrip(":.>›»→ ")):
        return True
    return _LINE_FURNITURE.search(folded) is not None


# --- what versions are compared on ---------------------------------------------------------


def comparable_text(text: str, site_furniture: Collection[str] = ()) -> str:
    """Normalised text minus furniture lines; versions are hashed and diffed on this."""
    kept = [
        line
        for line in _normalised_lines(text)
        if line
        and not _is_furniture(line)
        and not (site_furniture and _mask(line) in site_furniture)
    ]
    return "\n".join(kept)


def content_hash(title: str, comparable: str) -> str:
    """sha256 hex over the normalised headline and the comparable text."""
    head = normalise(title)
    # Length-prefixed, so that no split of the same characters between title and body collides.
    payload = f"{len(head)}:{head}\n{comparable}"
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def compared_text(text: str, extra: str = "", site_furniture: Collection[str] = ()) -> str:
    """What versions are hashed and diffed on: the body's comparable text, then the comparable
    lines of ``extra`` (paragraphs of the article the extractor dropped) the body lacks."""
    return join_compared(*compared_parts(text, extra, site_furniture))


def join_compared(main: str, more: list[str]) -> str:
    """The compared text from its parts (:func:`compared_parts`)."""
    # As stored hashes were made: an extra of furniture alone leaves an empty last line.
    return "\n".join([main, *more]) if main else "\n".join(more)


def compared_parts(
    text: str, extra: str = "", site_furniture: Collection[str] = ()
) -> tuple[str, list[str]]:
    """The body's comparable text, and the comparable lines of ``extra`` it lacks."""
    main = comparable_text(text, site_furniture)
    return main, _recalled(main, extra, site_furniture)


# The line a shown diff puts before the paragraphs the extractor dropped.
OUTSIDE_EXTRACT = "[outside the extracted text]"


def shown_text(text: str, extra: str = "", site_furniture: Collection[str] = ()) -> str:
    """The compared text as a diff shows it: the dropped paragraphs under a line of their own
    (:data:`OUTSIDE_EXTRACT`), so that an edit there reads as one outside the story's text."""
    main, recalled = compared_parts(text, extra, site_furniture)
    more = [line for line in recalled if line]
    return "\n".join(line for line in (main, OUTSIDE_EXTRACT, *more) if line) if more else main


def _recalled(main: str, extra: str, site_furniture: Collection[str]) -> list[str]:
    """The comparable lines of ``extra`` that the comparable body ``main`` lacks."""
    if not extra:
        return []
    have = set(main.split("\n"))
    return [line for line in comparable_text(extra, site_furniture).split("\n") if line not in have]
