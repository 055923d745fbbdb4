"""The one place that decides what a fetched page means: new, changed, unchanged, seen
again (a revert or an A/B flip-flop) or failed — and which alerts it raises.

A revert (the page goes back to a text it showed before) is news: it is judged like an edit,
diffed from the version it replaced and classed ``revert``. Going back again (A, B, A, B) is
a flip-flop, an A/B test most likely: one alert classed ``flip-flop``, then quiet until the
page shows a text not seen before.

Pure: no I/O. Versions are compared on their *comparable* text (normalised, furniture lines
dropped), recomputed for stored versions with today's furniture knowledge, so a line learned
to be furniture after a version was stored does not make the next check look like an edit.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from watcher.pipeline.classes import classify
from watcher.pipeline.diff import Change, compute_change, document, hunks
from watcher.pipeline.normalise import (
    compared_parts,
    content_hash,
    join_compared,
    line_keys,
    normalise,
)
from watcher.pipeline.rules import Match, Rule, Subject, evaluate
from watcher.records import ArticleState, NewAlert, NewVersion, RawExchange, VersionRecord

# A body shorter than this share of the previous version's is a failed extraction (a paywall,
# an error page, a redesign), not an edit that deleted most of the story.
COLLAPSE_RATIO = 0.3
EXCERPT_CHARS = 300
EXCERPTS = 5


@dataclass(frozen=True)
class Page:
    """An article's text as obtained on one check."""

    title: str
    text: str
    source: str  # page | feed
    etag: str | None = None
    last_modified: str | None = None
    # The HTTP exchange it came from, kept for the WARC archive (None: not archiving).
    raw: RawExchange | None = None
    extra: str = ""  # paragraphs of the article's region the extractor dropped
    moved_to: str | None = None  # a permanent redirect's target (see pipeline.takedown)


@dataclass(frozen=True)
class Judgement:
    status: str  # new | changed | unchanged | seen_again | failed
    version: NewVersion | None = None
    alerts: tuple[NewAlert, ...] = ()
    seen_again: int | None = None
    error: str | None = None
    learn_keys: frozenset[str] = frozenset()  # the page's lines, for furniture learning


@dataclass(frozen=True)
class _Comparable:
    title: str
    body: str
    outside: frozenset[str] = frozenset()  # its lines from paragraphs the extractor dropped

    @property
    def hash(self) -> str:
        return content_hash(self.title, self.body)


def _comparable(title: str, text: str, furniture: Collection[str], extra: str = "") -> _Comparable:
    main, more = compared_parts(text, extra, furniture)
    return _Comparable(normalise(title), join_compared(main, more), frozenset(more))


def _of_version(version: VersionRecord, furniture: Collection[str]) -> _Comparable:
    return _comparable(version.title, version.text, furniture, version.extra)


def judge(
    page: Page,
    history: Sequence[VersionRecord],
    article: ArticleState,
    furniture: Collection[str],
    rules: Sequence[Rule],
    tags: frozenset[str],
) -> Judgement:
    """Decide what ``page`` is, given the article's recent versions (oldest first)."""
    now = _comparable(page.title, page.text, furniture, page.extra)
    # Some feeds carry headlines only: their versions are headlines. A page with no text,
    # though, is a failed extraction.
    if not now.body and (page.source == "page" or not now.title):
        return Judgement("failed", error="no article text after removing page furniture")
    new_version = NewVersion(page.title, page.text, now.hash, page.source, page.extra)
    if not history:
        alerts = _alerts(rules, _subject("new", article, tags, now), article)
        # Normalising is line by line, so the keys of the two texts are those of their join.
        page_lines = page.source == "page"
        keys = line_keys(page.text) | line_keys(page.extra) if page_lines else frozenset()
        return Judgement("new", new_version, alerts, learn_keys=keys)
    current = _current(history, article.current_version)
    before = _of_version(current, furniture)
    if current.source == page.source and len(now.body) < COLLAPSE_RATIO * len(before.body):
        share = len(now.body) / max(len(before.body), 1)
        return Judgement(
            "failed",
            error=f"extracted text collapsed to {share:.0%} of the previous version's length; "
            "treated as a failed extraction, not an edit",
        )
    if now.hash == before.hash:
        return Judgement("unchanged")
    for old in reversed(history):
        if old.number != current.number and now.hash == _of_version(old, furniture).hash:
            flips = article.flips + 1
            if flips > 2:  # a flip-flop already said: quiet until a text not seen before
                return Judgement("seen_again", seen_again=old.number)
            extra_class = "revert" if flips == 1 else "flip-flop"
            alerts = _change_alerts(page, current, before, now, article, rules, tags, extra_class)
            return Judgement("seen_again", seen_again=old.number, alerts=alerts)
    alerts = _change_alerts(page, current, before, now, article, rules, tags)
    classes = tuple(alerts[0].detail.get("classes", ())) if alerts else ()
    if not classes and current.source == page.source:
        classes = classify(compute_change(before.title, before.body, now.title, now.body))
    return Judgement("changed", replace(new_version, classes=classes), alerts)


def _current(history: Sequence[VersionRecord], number: int | None) -> VersionRecord:
    """The version the page showed last (after a revert, not necessarily the newest)."""
    return next((v for v in history if v.number == number), history[-1])


def _change_alerts(
    page: Page,
    current: VersionRecord,
    before: _Comparable,
    now: _Comparable,
    article: ArticleState,
    rules: Sequence[Rule],
    tags: frozenset[str],
    extra_class: str | None = None,
) -> tuple[NewAlert, ...]:
    if current.source == "feed" and page.source == "page" and extra_class is None:
        # The full text replaced the feed's summary: that is not an edit. Rules for new
        # articles get their chance on the full text, unless the summary already matched.
        matched_before = {m.rule for m in evaluate(rules, _subject("new", article, tags, before))}
        subject = _subject("new", article, tags, now)
        return tuple(a for a in _alerts(rules, subject, article) if a.rule not in matched_before)
    change = compute_change(before.title, before.body, now.title, now.body)
    classes = classify(change)
    if extra_class == "flip-flop":
        classes = ("flip-flop",)
    elif extra_class is not None:
        classes = (extra_class, *classes)
    subject = _subject("changed", article, tags, now, change, classes)
    alerts = _alerts(rules, subject, article)
    # Messages say which version this edit follows and when that one was fetched.
    previous = {"version": current.number, "fetched_at": current.fetched_at.isoformat()}
    detail = {"previous": previous, "classes": list(classes)}
    return tuple(replace(a, detail={**a.detail, **detail}) for a in alerts)


def _subject(
    event: str,
    article: ArticleState,
    tags: frozenset[str],
    content: _Comparable,
    change: Change | None = None,
    classes: tuple[str, ...] = (),
) -> Subject:
    text = document(content.title, content.body)
    return Subject(event, article.feeds, tags, text, change, classes, content.outside)


def _alerts(rules: Sequence[Rule], subject: Subject, article: ArticleState) -> tuple[NewAlert, ...]:
    feed = article.feeds[0] if article.feeds else ""
    return tuple(
        NewAlert(m.rule, m.event, feed, m.matched, alert_detail(m, subject))
        for m in evaluate(rules, subject)
    )


def alert_detail(match: Match, subject: Subject) -> dict[str, Any]:
    """What an alert shows without re-reading versions: why it fired and short excerpts."""
    detail: dict[str, Any] = {"reasons": list(match.reasons)}
    change = subject.change
    if change is None:
        detail["added"] = [_cut(subject.document)]
        detail["removed"] = []
        return detail
    all_hunks = hunks(change)
    new_document = change.new_document
    detail.update(
        added=[_cut(text) for text in change.added[:EXCERPTS]],
        removed=[_cut(text) for text in change.removed[:EXCERPTS]],
        words_added=change.words_added,
        words_removed=change.words_removed,
        headline_changed=change.headline_changed,
        old_title=change.old_title,
        numbers={"removed": list(change.numbers_removed), "added": list(change.numbers_added)},
        quotes={"removed": list(change.quotes_removed), "added": list(change.quotes_added)},
        hunks=[
            {
                "before": h.before,
                "removed": _cut(h.removed),
                "added": _cut(h.added),
                "after": h.after,
                "outside": _in_lines(new_document, h.at, subject.outside),
            }
            for h in all_hunks[:EXCERPTS]
        ],
        hunks_total=len(all_hunks),
    )
    return detail


def _in_lines(document: str, at: int, lines: frozenset[str]) -> bool:
    """Whether the line of ``document`` holding offset ``at`` is one of ``lines``."""
    if not lines:
        return False
    start = document.rfind("\n", 0, at) + 1
    end = document.find("\n", at)
    return document[start : end if end >= 0 else len(document)] in lines


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1].rstrip() + "…"
