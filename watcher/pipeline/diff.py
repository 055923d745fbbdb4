"""Two versions of an article → a :class:`Change`: what was added and removed, word by word.

The diffed unit is the *document* (title, blank line, body), so a rewritten headline is an edit
like any other. The diff is word level (DESIGN.md): each distinct token — a word, a whitespace
run or one punctuation character — is mapped to one code character, diff-match-patch diffs the
code strings and cleans them up semantically, and the codes are mapped back. Edits therefore
always cover whole words, and a 25 KB article takes milliseconds instead of the hundreds a
character diff takes. The compiled ``fast-diff-match-patch`` (the same algorithm in C++) runs
the diff when it is installed, the pure-Python library otherwise; the semantic cleanup always
runs in Python, where edits are aligned by the tokens the codes stand for.

What counts as a number: digits with ``,`` or ``.`` separators, an optional minus sign and
``%`` ("12", "-3", "1,200", "3.5%"). A number must stand alone on its left: "COVID-19",
"F-16", "MH17" and "v1.2" are names, not figures. Letters on its right are units or suffixes
and are dropped, so a revised "10km" still shows as 10 → 12 ("1990s" gives 1990). The dash of
a range is not a sign: "2019-2020" gives 2019 and 2020.

What counts as a quote: a passage between double quotes ("…", “…”, „…“, «…»), paired within a
paragraph; an opening quote left open runs to the end of its paragraph (news style for quotes
that continue into the next one). Single quotes count only when clearly a quote: the opening
mark starts a word with a letter (not don't, not '90s), the closing one ends a word, and the
passage has at least two words.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass

from diff_match_patch import diff_match_patch

from watcher.pipeline.normalise import normalise, shown_text
from watcher.records import VersionRecord

Op = tuple[int, str]  # (DELETE | EQUAL | INSERT, text): diff-match-patch's representation
DELETE, EQUAL, INSERT = -1, 0, 1

# Past this many seconds diff-match-patch settles for a coarser diff; it is still a valid one.
_TIMEOUT = 1.0
_WORD = r"\w+(?:[.,'’]\w+)*"  # "1,200", "3.5" and "don't" are one word each
_TOKEN = re.compile(rf"{_WORD}|\s+|[^\w\s]")
_WORDS = re.compile(_WORD)
_SURROGATES = 0x800
_MAX_CODES = 0x10FFFF - _SURROGATES  # every code point but NUL and the surrogate block
_NUMBER = re.compile(r"(?=[-−\d])(?<![\w.,])(?<![^\W\d_][-−])(?:[-−](?=\d))?\d+(?:[.,]\d+)*%?")
_DOUBLE_MARKS = re.compile('["“”„«»]')
_SINGLE_MARKS = re.compile("['‘’]")
_OPEN_AFTER = '([{/:—–-"“„«'  # characters after which a quotation may open
_CLOSE_BEFORE = '.,;:!?)]}/—–-"”“»'  # characters before which a quotation may close

_FastDiff = Callable[..., list[tuple[str, int]]]
_SIGNS = {"-": DELETE, "=": EQUAL, "+": INSERT}  # fast-diff-match-patch's names for the ops


def _load_fast_diff() -> _FastDiff | None:
    """``fast_diff_match_patch.diff`` when installed (imported by name: it has no stubs)."""
    try:
        module = importlib.import_module("fast_diff_match_patch")
    except ImportError:
        return None
    diff: _FastDiff = module.diff
    return diff


_fast_diff = _load_fast_diff()
# Where wchar_t has 16 bits (Windows) the compiled library rejects code points beyond the BMP.
_FAST_ASTRAL = sys.platform != "win32"


@dataclass(frozen=True)
class Hunk:
    """One place that changed, with a few words of unchanged context for display."""

    before: str
    removed: str
    added: str
    after: str
    at: int = 0  # where it is in the new document (see Change.new_document)


@dataclass(frozen=True)
class Change:
    """What changed between two versions; ``ops`` is the word diff of their documents."""

    ops: tuple[Op, ...]
    old_title: str
    new_title: str
    added: tuple[str, ...]  # inserted passages, stripped, empty ones dropped
    removed: tuple[str, ...]
    words_added: int
    words_removed: int
    headline_changed: bool
    numbers_removed: tuple[str, ...]  # in the old document and not the new (multiset)
    numbers_added: tuple[str, ...]
    quotes_removed: tuple[str, ...]
    quotes_added: tuple[str, ...]
    inserted_spans: tuple[tuple[int, int], ...]  # [start, end) in the new document
    deleted_spans: tuple[tuple[int, int], ...]  # [start, end) in the old document

    @property
    def words_changed(self) -> int:
        """Words added plus words removed: a replaced word counts twice."""
        return self.words_added + self.words_removed

    @property
    def old_document(self) -> str:
        return "".join(text for op, text in self.ops if op != INSERT)

    @property
    def new_document(self) -> str:
        return "".join(text for op, text in self.ops if op != DELETE)


def document(title: str, text: str) -> str:
    """The unit that is diffed: the headline, a blank line, the body."""
    return f"{title}\n\n{text}"


def body_after_title(title: str, body: str) -> str:
    """The body without a first line that repeats the headline. Many pages (one in eight of
    the test corpus) keep their <h1> in the article text; left in, a rewritten headline
    would show twice in every diff of it."""
    first, newline, rest = body.partition("\n")
    if newline and title.strip() and first.strip().casefold() == title.strip().casefold():
        return rest.lstrip("\n")
    return body


def compute_change(old_title: str, old_text: str, new_title: str, new_text: str) -> Change:
    """Diff two versions of an article and describe the change (documents: see
    :func:`document` and :func:`body_after_title`)."""
    old_doc = document(old_title, body_after_title(old_title, old_text))
    new_doc = document(new_title, body_after_title(new_title, new_text))
    ops = tuple(word_diff(old_doc, new_doc))
    # Paragraphs both documents have cancel out of the multiset differences: skip them.
    old_lines, new_lines = old_doc.split("\n"), new_doc.split("\n")
    old_only = "\n".join(_minus(old_lines, new_lines))
    new_only = "\n".join(_minus(new_lines, old_lines))
    old_numbers, new_numbers = _NUMBER.findall(old_only), _NUMBER.findall(new_only)
    old_quotes, new_quotes = _quotes(old_only), _quotes(new_only)
    return Change(
        ops=ops,
        old_title=old_title,
        new_title=new_title,
        added=_passages(ops, INSERT),
        removed=_passages(ops, DELETE),
        words_added=_count_words(ops, INSERT),
        words_removed=_count_words(ops, DELETE),
        headline_changed=old_title.split() != new_title.split(),
        numbers_removed=_minus(old_numbers, new_numbers),
        numbers_added=_minus(new_numbers, old_numbers),
        quotes_removed=_minus(old_quotes, new_quotes),
        quotes_added=_minus(new_quotes, old_quotes),
        inserted_spans=_spans(ops, INSERT),
        deleted_spans=_spans(ops, DELETE),
    )


def versions_change(
    old: VersionRecord, new: VersionRecord, furniture: Collection[str] = ()
) -> Change:
    """The diff a reader is shown (`watcher diff`, the web view) between two stored versions:
    normalised headlines, the text without furniture, and the paragraphs the extractor
    dropped (compared beside the body) under their own line, so an edit there shows too."""
    return compute_change(
        normalise(old.title),
        shown_text(old.text, old.extra, furniture),
        normalise(new.title),
        shown_text(new.text, new.extra, furniture),
    )


def word_diff(old: str, new: str) -> list[Op]:
    """Word-level diff: joining the non-insert texts gives ``old``, the non-delete ``new``."""
    return _word_diff(old, new, _MAX_CODES)


def hunks(change_or_ops: Change | Sequence[Op], context_words: int = 8) -> list[Hunk]:
    """One hunk per changed place; a deletion next to an insertion is one replacement."""
    ops = change_or_ops.ops if isinstance(change_or_ops, Change) else change_or_ops
    found: list[Hunk] = []
    start = at = 0
    while start < len(ops):
        if ops[start][0] == EQUAL:
            at += len(ops[start][1])
            start += 1
            continue
        end = start
        while end < len(ops) and ops[end][0] != EQUAL:
            end += 1
        edits = ops[start:end]
        found.append(
            Hunk(
                before=_tail(ops[start - 1][1] if start else "", context_words),
                removed="".join(text for op, text in edits if op == DELETE),
                added="".join(text for op, text in edits if op == INSERT),
                after=_head(ops[end][1] if end < len(ops) else "", context_words),
                at=at,
            )
        )
        at += sum(len(text) for op, text in edits if op == INSERT)
        start = end
    return found


# --- the word diff ---------------------------------------------------------------------------


def _word_diff(old: str, new: str, capacity: int) -> list[Op]:
    """``word_diff`` with at most ``capacity`` (≥ 2) distinct codes, so tests can overflow it."""
    if old == new:
        return [(EQUAL, old)] if old else []
    old_codes, new_codes, table = _encode(_TOKEN.findall(old), _TOKEN.findall(new), capacity)
    tokens = {ord(code): token for token, code in table.items()}
    dmp = _TokenDmp(tokens)
    coded = _fast_ops(old_codes, new_codes, len(table))
    if coded is None:
        coded = dmp.diff_main(old_codes, new_codes, False)
    dmp.diff_cleanupSemantic(coded)
    return _merge((op, codes.translate(tokens)) for op, codes in coded)


def _code(index: int) -> str:
    """The code of the index-th distinct token. NUL is skipped (C string APIs end there) and
    so is the surrogate block (not valid on its own in UTF-16 or UTF-8)."""
    point = index + 1
    return chr(point if point < 0xD800 else point + _SURROGATES)


def _encode(old: list[str], new: list[str], capacity: int) -> tuple[str, str, dict[str, str]]:
    """Both token lists as code strings, and the table token → code."""
    # As the library does for lines: the old text may take two thirds of the codes, keeping
    # the rest for words that only the new text has.
    old_limit = max(1, capacity * 2 // 3)
    vocabulary = dict.fromkeys(old)
    old_distinct = len(vocabulary)
    vocabulary.update(dict.fromkeys(new))
    if old_distinct < old_limit and len(vocabulary) < capacity:
        # The usual case, done by built-ins: first appearance order, as in _encode_until.
        table = dict(zip(vocabulary, map(_code, range(len(vocabulary))), strict=True))
        return "".join(map(table.__getitem__, old)), "".join(map(table.__getitem__, new)), table
    table = {}
    return _encode_until(old, table, old_limit), _encode_until(new, table, capacity), table


def _encode_until(tokens: list[str], table: dict[str, str], limit: int) -> str:
    """Codes for ``tokens``, adding new tokens to ``table`` while it has fewer than ``limit``."""
    codes: list[str] = []
    for i, token in enumerate(tokens):
        code = table.get(token)
        if code is None:
            if len(table) >= limit - 1:
                # Out of codes: the rest of the text becomes one token (the library's answer
                # for lines), which keeps the diff exact, only coarser at the end.
                rest = "".join(tokens[i:])
                codes.append(table.setdefault(rest, _code(len(table))))
                break
            code = table[token] = _code(len(table))
        codes.append(code)
    return "".join(codes)


def _fast_ops(old_codes: str, new_codes: str, distinct: int) -> list[Op] | None:
    """The compiled library's diff, or None when it is absent or unusable for these codes."""
    if _fast_diff is None or not (_FAST_ASTRAL or distinct < 0xD800):
        return None
    counts = _fast_diff(old_codes, new_codes, timelimit=_TIMEOUT, checklines=False, cleanup="No")
    ops: list[Op] = []
    i = j = 0
    for sign, length in counts:
        op = _SIGNS[sign]
        text = old_codes[i : i + length] if op <= 0 else new_codes[j : j + length]
        if op == EQUAL and text != new_codes[j : j + length]:
            return None  # it reports lengths only: trust them no further than checked
        ops.append((op, text))
        i, j = i + (length if op <= 0 else 0), j + (length if op >= 0 else 0)
    return ops if (i, j) == (len(old_codes), len(new_codes)) else None


class _TokenDmp(diff_match_patch):  # type: ignore[misc]  # the library is untyped
    """diff-match-patch over code strings, aligning edits by the tokens the codes stand for."""

    def __init__(self, tokens: dict[int, str]) -> None:
        super().__init__()
        self.Diff_Timeout = _TIMEOUT
        self._tokens = tokens

    def diff_cleanupSemanticLossless(self, diffs: list[Op]) -> None:
        """Slide each lone edit to where it reads best. The library's own version judges the
        characters at the edges, which here are arbitrary codes; this one judges the tokens."""
        emptied = False
        for i in range(1, len(diffs) - 1):
            (op_before, before), (op, edit), (op_after, after) = diffs[i - 1 : i + 2]
            if op != EQUAL and op_before == op_after == EQUAL and before and after:
                before, edit, after = self._slide(before, edit, after)
                diffs[i - 1 : i + 2] = [(EQUAL, before), (op, edit), (EQUAL, after)]
                emptied = emptied or not (before and after)
        if emptied:
            diffs[:] = [diff for diff in diffs if diff[1]]
            self.diff_cleanupMerge(diffs)

    def _slide(self, before: str, edit: str, after: str) -> tuple[str, str, str]:
        # An edit that ends like the text before it can move left; start leftmost, then try
        # each position to the right and keep the best-scoring one.
        shift = self.diff_commonSuffix(before, edit)
        if shift:
            moved = edit[-shift:]
            before, edit, after = before[:-shift], moved + edit[:-shift], moved + after
        best, best_score = (before, edit, after), self._cut(before, edit) + self._cut(edit, after)
        while after and edit[0] == after[0]:
            before, edit, after = before + edit[0], edit[1:] + after[0], after[1:]
            score = self._cut(before, edit) + self._cut(edit, after)
            if score > best_score:
                best, best_score = (before, edit, after), score
        return best

    def _cut(self, left: str, right: str) -> int:
        """How natural a cut between two code strings is, judged by the tokens beside it."""
        if not left or not right:
            return 4  # an edge of the document
        last, first = self._tokens[ord(left[-1])], self._tokens[ord(right[0])]
        if "\n" in last:
            return 4  # the start of a paragraph
        if "\n" in first:
            return 3  # the end of one
        if last.isspace():
            return 2  # the start of a word
        return 1 if first.isspace() else 0


def _merge(ops: Iterable[Op]) -> list[Op]:
    """Drop empty ops and join neighbours of the same kind."""
    merged: list[Op] = []
    for op, text in ops:
        if not text:
            continue
        if merged and merged[-1][0] == op:
            merged[-1] = (op, merged[-1][1] + text)
        else:
            merged.append((op, text))
    return merged


# --- describing the change -------------------------------------------------------------------


def _passages(ops: Sequence[Op], kind: int) -> tuple[str, ...]:
    return tuple(text.strip() for op, text in ops if op == kind and text.strip())


def _count_words(ops: Sequence[Op], kind: int) -> int:
    return sum(len(_WORDS.findall(text)) for op, text in ops if op == kind)


def _spans(ops: Sequence[Op], kind: int) -> tuple[tuple[int, int], ...]:
    """Where the ops of ``kind`` lie in the document they belong to."""
    spans: list[tuple[int, int]] = []
    position = 0
    for op, text in ops:
        if op == kind:
            spans.append((position, position + len(text)))
        if op in (kind, EQUAL):
            position += len(text)
    return tuple(spans)


def _minus(items: list[str], other: list[str]) -> tuple[str, ...]:
    """The multiset difference ``items - other``, in the order of ``items``."""
    left = Counter(other)
    kept: list[str] = []
    for item in items:
        if left[item]:
            left[item] -= 1
        else:
            kept.append(item)
    return tuple(kept)


def _quotes(doc: str) -> list[str]:
    found: list[str] = []
    for paragraph in doc.split("\n"):
        found += _quoted(paragraph, _DOUBLE_MARKS, single=False)
        found += _quoted(paragraph, _SINGLE_MARKS, single=True)
    return [text for text in (quote.strip().rstrip(",").rstrip() for quote in found) if text]


def _quoted(paragraph: str, marks: re.Pattern[str], *, single: bool) -> Iterator[str]:
    start: int | None = None
    for mark in marks.finditer(paragraph):
        at = mark.start()
        if start is None and _opens(paragraph, at, single):
            start = at + 1
        elif start is not None and _closes(paragraph, at):
            quote = paragraph[start:at]
            start = None
            if not single or len(quote.split()) > 1:
                yield quote
    if start is not None and not single:
        yield paragraph[start:]  # runs on into the next paragraph


def _opens(text: str, at: int, single: bool) -> bool:
    if text[at] in "«»":
        return text[at] == "«"  # guillemets say which way they face
    before = text[at - 1] if at else " "
    after = text[at + 1] if at + 1 < len(text) else " "
    if not (before.isspace() or before in _OPEN_AFTER):
        return False
    return after.isalpha() if single else not after.isspace()


def _closes(text: str, at: int) -> bool:
    if text[at] in "«»":
        return text[at] == "»"
    before = text[at - 1] if at else " "
    after = text[at + 1] if at + 1 < len(text) else " "
    return not before.isspace() and (after.isspace() or after in _CLOSE_BEFORE)


def _tail(text: str, words: int) -> str:
    """The last ``words`` words of ``text``'s last line."""
    if words <= 0:
        return ""
    line = text[text.rfind("\n") + 1 :]
    found = list(_WORDS.finditer(line))
    return line[found[-words].start() :] if len(found) > words else line


def _head(text: str, words: int) -> str:
    """The first ``words`` words of ``text``'s first line."""
    if words <= 0:
        return ""
    line = text.split("\n", 1)[0]
    found = list(_WORDS.finditer(line))
    return line[: found[words - 1].end()] if len(found) > words else line
