"""Rules: a new article or a Change, plus the configured rules → matches (which rule, why).

A rule fires for one of its ``events`` when every condition it sets holds. Each condition
kind is a class registered by name through ``__init_subclass__``; its docstring is the user
documentation that ``watcher rules`` prints.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from watcher.config.models import RuleConfig
from watcher.pipeline.diff import Change


@dataclass(frozen=True)
class Subject:
    """What rules look at: a new article (``change`` is None) or a changed one."""

    event: str  # new | changed
    feeds: tuple[str, ...]
    tags: frozenset[str]
    document: str  # title + body of the version being judged
    change: Change | None = None
    classes: tuple[str, ...] = ()  # of the change (watcher.pipeline.classes)
    # Lines of the document from paragraphs the extractor dropped (watcher.pipeline.recall).
    outside: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Verdict:
    terms: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class Match:
    rule: str
    event: str
    matched: tuple[str, ...]
    reasons: tuple[str, ...]
    notify: tuple[str, ...]


class Condition:
    """Base of the condition kinds; subclasses register themselves by ``kind``."""

    registry: ClassVar[dict[str, type[Condition]]] = {}
    kind: ClassVar[str]

    def __init_subclass__(cls, kind: str, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if kind in Condition.registry:
            raise TypeError(f"rule condition kind {kind!r} is registered twice")
        cls.kind = kind
        Condition.registry[kind] = cls

    @classmethod
    def from_rule(cls, rule: RuleConfig) -> Condition | None:
        """The condition this rule sets, or None when the rule does not use this kind."""
        raise NotImplementedError

    def test(self, subject: Subject) -> Verdict | None:
        """A verdict when the subject passes, None when it does not."""
        raise NotImplementedError


class Scope(Condition, kind="scope"):
    """`feeds: [name, ...]` and/or `tags: [tag, ...]` limit a rule to articles that appeared in
    one of those feeds or in a feed carrying one of those tags. Without them a rule covers
    every feed."""

    def __init__(self, feeds: frozenset[str], tags: frozenset[str]) -> None:
        self.feeds = feeds
        self.tags = tags

    @classmethod
    def from_rule(cls, rule: RuleConfig) -> Scope | None:
        if not rule.feeds and not rule.tags:
            return None
        return cls(frozenset(rule.feeds), frozenset(rule.tags))

    def test(self, subject: Subject) -> Verdict | None:
        if self.feeds.intersection(subject.feeds) or self.tags & subject.tags:
            return Verdict()
        return None


class _TextCondition(Condition, kind="_text"):
    """Shared by keywords and regex: where in the article a pattern must be found."""

    def __init__(self, patterns: Sequence[tuple[str, re.Pattern[str]]]) -> None:
        self.patterns = patterns

    def test(self, subject: Subject) -> Verdict | None:
        found: list[str] = []
        reasons: list[str] = []
        for label, pattern in self.patterns:
            where = self.where_found(pattern, subject)
            if where:
                found.append(label)
                reasons.append(f"{label!r} {where}")
        return Verdict(tuple(found), "; ".join(reasons)) if found else None

    def where_found(self, pattern: re.Pattern[str], subject: Subject) -> str:
        return _where_found(pattern, subject)


class Keywords(_TextCondition, kind="keywords"):
    """`keywords: [phrase, ...]` — case-insensitive whole words and phrases. Spelling variants
    of a compound match each other: "cease-fire", "cease fire" and "ceasefire" are one keyword
    (a one-word keyword splits at a space only into parts of 4+ letters, so write "air strike"
    to match "airstrike", "air-strike" and "air strike"). For `new`, a keyword must be in the
    headline or the text. For `changed` (a revert included), the keyword must appear where it
    was not or leave: its number of occurrences in the article, headline included, went up
    or down. An edit to a sentence that keeps its keyword ("Cease-fire talks" to "Marenne
    cease-fire talks") is a change, but not a keyword event."""

    @classmethod
    def from_rule(cls, rule: RuleConfig) -> Keywords | None:
        if not rule.keywords:
            return None
        return cls([(phrase, keyword_pattern(phrase)) for phrase in rule.keywords])


class Regex(_TextCondition, kind="regex"):
    """`regex: PATTERN` — a Python regular expression: for `new`, found anywhere; for
    `changed`, what it matches in the article (headline included) is not what it matched
    before: a match appeared, left, or reads differently ("12 civilians killed" to "15
    civilians killed"). Case-sensitive unless it starts with (?i)."""

    @classmethod
    def from_rule(cls, rule: RuleConfig) -> Regex | None:
        if rule.regex is None:
            return None
        return cls([(rule.regex, re.compile(rule.regex))])

    def where_found(self, pattern: re.Pattern[str], subject: Subject) -> str:
        change = subject.change
        if change is None:
            return _where_found(pattern, subject)
        before = Counter(m.group() for m in pattern.finditer(change.old_document))
        after = Counter(m.group() for m in pattern.finditer(change.new_document))
        added, removed = after - before, before - after
        return " and ".join(w for w, hit in (("added", added), ("removed", removed)) if hit)


class MinChange(Condition, kind="min_change"):
    """`min_change: N` — a `changed` event must add or remove at least N words in all.
    Does not apply to `new`."""

    def __init__(self, words: int) -> None:
        self.words = words

    @classmethod
    def from_rule(cls, rule: RuleConfig) -> MinChange | None:
        return cls(rule.min_change) if rule.min_change > 0 else None

    def test(self, subject: Subject) -> Verdict | None:
        if subject.change is None or subject.change.words_changed >= self.words:
            return Verdict()
        return None


_DASHES = r"\-‐‑‒–—"  # escaped: it goes inside [...] classes
_JOIN = rf"(?:\s*[{_DASHES}]\s*|\s+)?"  # between parts of a compound: nothing, space or dash
# A one-word keyword also matches itself split in two: at a dash anywhere ("e-mail"), at a
# space only into parts this long, so "ceasefire" finds "cease fire" but "therapist" does
# not find "the rapist". Write the open form ("air strike") to match every spelling.
_MIN_SPACED_PART = 4


def keyword_pattern(phrase: str) -> re.Pattern[str]:
    """Whole-word, case-insensitive pattern for a keyword and its compound spellings."""
    pieces = re.findall(rf"\w+|[^\w\s{_DASHES}]+", phrase.strip())
    parts: list[str] = []
    for piece in pieces:
        if parts:
            parts.append(_JOIN)
        parts.append(_split_once(piece) if re.fullmatch(r"\w+", piece) else re.escape(piece))
    # Every match starts with the phrase's first character. Said first, as a lookahead, it
    # lets re skip ahead to where that character is, which the lookbehind alone prevents:
    # half the CPU of a search through an article.
    first = f"(?={re.escape(pieces[0][0])})" if pieces else ""
    return re.compile(first + r"(?<!\w)" + "".join(parts) + r"(?!\w)", re.IGNORECASE)


def _split_once(word: str) -> str:
    """``ceasefire`` → also ``cease-fire`` and ``cease fire`` (see _MIN_SPACED_PART)."""
    splits = []
    for i in range(1, len(word)):
        head, tail = re.escape(word[:i]), re.escape(word[i:])
        spaced = min(i, len(word) - i) >= _MIN_SPACED_PART
        joint = rf"(?:\s|\s*[{_DASHES}]\s*)" if spaced else rf"[{_DASHES}]"
        splits.append(head + joint + tail)
    return "(?:" + "|".join([re.escape(word), *splits]) + ")"


def _where_found(pattern: re.Pattern[str], subject: Subject) -> str:
    change = subject.change
    if change is None:
        return "in the article" if pattern.search(subject.document) else ""
    before = len(pattern.findall(change.old_document))
    after = len(pattern.findall(change.new_document))
    if after > before:
        return f"added ({before} → {after} in the article)"
    if after < before:
        return f"removed ({before} → {after} in the article)"
    return ""


class Classes(Condition, kind="classes"):
    """`classes: [class, ...]` — a `changed` event must be of one of these kinds: `typo` (only
    small in-word edits), `wording`, `substance` (a number, quote or name changed, a sentence
    or paragraph added or removed), `headline`, `correction` (a correction or editor's note
    added), `revert` (the page went back to a text it showed before), `flip-flop` (it keeps
    alternating between texts it has shown: said once, then quiet until a new text). A change
    may be of several kinds (a headline and substance). Does not apply to `new`."""

    def __init__(self, classes: frozenset[str]) -> None:
        self.classes = classes

    @classmethod
    def from_rule(cls, rule: RuleConfig) -> Classes | None:
        return cls(frozenset(rule.classes)) if rule.classes else None

    def test(self, subject: Subject) -> Verdict | None:
        if subject.change is None:
            return Verdict()
        hit = [name for name in subject.classes if name in self.classes]
        return Verdict(reason=f"a {'/'.join(hit)} edit") if hit else None


@dataclass(frozen=True)
class Rule:
    name: str
    events: frozenset[str]
    notify: tuple[str, ...]
    conditions: tuple[Condition, ...]

    @classmethod
    def from_config(cls, config: RuleConfig) -> Rule:
        kinds = [kind for name, kind in Condition.registry.items() if not name.startswith("_")]
        conditions = tuple(c for kind in kinds if (c := kind.from_rule(config)) is not None)
        return cls(config.name, frozenset(config.events), tuple(config.notify), conditions)

    def evaluate(self, subject: Subject) -> Match | None:
        if subject.event not in self.events:
            return None
        terms: list[str] = []
        reasons: list[str] = []
        for condition in self.conditions:
            verdict = condition.test(subject)
            if verdict is None:
                return None
            terms.extend(verdict.terms)
            if verdict.reason:
                reasons.append(verdict.reason)
        return Match(self.name, subject.event, tuple(terms), tuple(reasons), self.notify)


def compile_rules(configs: Iterable[RuleConfig]) -> tuple[Rule, ...]:
    return tuple(Rule.from_config(config) for config in configs)


def evaluate(rules: Iterable[Rule], subject: Subject) -> list[Match]:
    return [match for rule in rules if (match := rule.evaluate(subject)) is not None]


def documentation() -> list[tuple[str, str]]:
    """(kind, user doc) for every registered condition kind, for ``watcher rules``."""
    return [
        (kind, " ".join((cls.__doc__ or "").split()))
        for kind, cls in Condition.registry.items()
        if not kind.startswith("_")
    ]
