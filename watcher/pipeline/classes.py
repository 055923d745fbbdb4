"""What kind of edit a :class:`~watcher.pipeline.diff.Change` is: its classes, strongest first.

* ``correction`` — a correction or editor's note was added ("Correction:", "An earlier version
  of this article...", "This story has been updated to...").
* ``headline`` — the headline changed.
* one of, for the body: ``substance`` (a number, a quote or a name changed, or a sentence or
  paragraph was added or removed), ``typo`` (only small in-word edits: a letter or two, or
  punctuation), else ``wording``.
* ``revert`` and ``flip-flop`` are set by :mod:`watcher.pipeline.judge` (the page went back to
  a text it had shown; it keeps alternating between texts it has shown).
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from watcher.pipeline.diff import Change, Hunk, hunks

CLASSES = ("correction", "substance", "headline", "wording", "typo", "revert", "flip-flop")

_CORRECTION = re.compile(
    r"(?:^|\n)\s*(?:correction|clarification|editor'?s note|update|updated)\s*[:.—–-]"
    r"|\ban? (?:earlier|previous) version of this (?:article|story|report|post)"
    r"|\bthis (?:article|story|report|post) (?:has been|was) (?:updated|corrected|amended)",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+(?:[.,'’]\w+)*")
_CAPITALISED = re.compile(r"\b[A-Z][\w'’-]*")
# A passage of this many words added or removed is a sentence, not a touch of wording.
SENTENCE_WORDS = 8
# Two spellings of a word this similar are a typo fixed (or made), not another word.
TYPO_SIMILARITY = 0.75


def classify(change: Change) -> tuple[str, ...]:
    """The classes of a change, in the order of ``CLASSES``."""
    found: set[str] = set()
    if any(_CORRECTION.search(passage) for passage in change.added):
        found.add("correction")
    if change.headline_changed:
        found.add("headline")
    body = [h for h in hunks(change) if h.removed.strip() or h.added.strip()]
    if change.headline_changed:
        body = [h for h in body if not _in_title(h, change)]
    if body:
        found.add(_body_class(change, body))
    return tuple(name for name in CLASSES if name in found)


def _in_title(hunk: Hunk, change: Change) -> bool:
    return (
        bool(hunk.added.strip())
        and hunk.added.strip() in change.new_title
        and (not hunk.removed.strip() or hunk.removed.strip() in change.old_title)
    )


def _body_class(change: Change, body: list[Hunk]) -> str:
    if change.numbers_added or change.numbers_removed or change.quotes_added:
        return "substance"
    if change.quotes_removed:
        return "substance"
    if any(_is_sentence(h.added) or _is_sentence(h.removed) for h in body):
        return "substance"
    common = _lower_words(change.old_document) | _lower_words(change.new_document)
    for h in body:
        if _names(h.added, common) - _words(h.removed) or _names(h.removed, common) - _words(
            h.added
        ):
            return "substance"
    return "typo" if all(_is_typo(h) for h in body) else "wording"


_WHOLE_SENTENCE = re.compile(r"^[\"“‘']?[A-Z].*[.!?][\"”’']?$", re.DOTALL)


def _is_sentence(passage: str) -> bool:
    """Long, or a whole sentence ("A ceasefire took effect at midnight.")."""
    words = len(_WORD.findall(passage))
    return words >= SENTENCE_WORDS or (words >= 3 and bool(_WHOLE_SENTENCE.match(passage.strip())))


def _lower_words(document: str) -> set[str]:
    return {word for word in _WORD.findall(document) if word.islower()}


def _names(passage: str, common: set[str]) -> set[str]:
    """Capitalised words the documents never write in lower case: names ("Marenne"), not a
    sentence's first word ("The")."""
    words = (word.casefold() for word in _CAPITALISED.findall(passage))
    return {word for word in words if word not in common}


def _words(passage: str) -> set[str]:
    return {word.casefold() for word in _WORD.findall(passage)}


def _is_typo(hunk: Hunk) -> bool:
    old, new = _WORD.findall(hunk.removed), _WORD.findall(hunk.added)
    if not old and not new:
        return True  # punctuation only
    if len(old) != len(new):
        return False
    return all(
        SequenceMatcher(None, a.casefold(), b.casefold()).ratio() >= TYPO_SIMILARITY
        for a, b in zip(old, new, strict=True)
    )
