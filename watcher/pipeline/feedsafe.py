"""A fetched feed document made safe to hand feedparser: repaired UTF-8, defused entities.

A DOCTYPE's internal subset may declare entities, and two parsers would expand them. expat
(feedparser's strict pass) only stops at 100 times the input once past 8 MiB, so a 10 MB
feed could grow to 1 GB; feedparser's loose pass, which runs whenever expat gives up, expands
every entity bound to plain text with no limit at all (100 KB of text referenced 2,000
times: 400 MB of text and 13 s). feedparser also finds the DOCTYPE with a regular
expression that a comment holding "<x" defeats, handing expat the whole DTD. So a document
that declares any entity gets a prolog of our own: the XML declaration and a DOCTYPE with
only the entities bound to plain text or to one character reference, and those only while
all their uses add at most ENTITY_BUDGET characters. External (SYSTEM/PUBLIC), parameter
and nested entities are dropped, and their references stay literal text. This runs on the
document as feedparser will decode it, so a UTF-16 or UTF-7 label hides nothing.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from typing import Any

import feedparser
from feedparser.encodings import convert_to_utf8

from watcher.pipeline.decode import mostly_utf8

# Characters the kept entity declarations of one document may add, all references together.
ENTITY_BUDGET = 1_000_000


_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
_KEPT_ENTITY = re.compile(
    rb"""<!ENTITY\s+(\w+)\s+(["'])([^"'&%<>]*|&#(?:[0-9]{1,7}|x[0-9a-fA-F]{1,6});)\2\s*>"""
)
_ELEMENT_START = re.compile(rb"<\w")  # what feedparser takes for the end of the prolog
_DECLARATION_TOKEN = re.compile(rb"""["'\[\]>]|<!--|<\?""")
_CLOSERS = {b'"': b'"', b"'": b"'", b"<!--": b"-->", b"<?": b"?>"}
# A real prolog is a few hundred bytes: scanning and collecting stop here (the rest of an
# overlong prolog is dropped with it).
_PROLOG_LIMIT = 64 * 1024


def prepare_document(
    content: bytes, headers: dict[str, str]
) -> tuple[bytes, dict[str, str], str | None]:
    """The document to hand feedparser, its headers, and a note if declarations were dropped.

    The bytes are left alone unless (1) they are UTF-8 with a few invalid bytes, which
    become U+FFFD: feedparser would otherwise fall back to windows-1252 or ISO-8859-2 for the
    whole document, turning every accented word of every entry into mojibake; or (2) the
    document, decoded as feedparser will decode it, contains "<!ENTITY" anywhere: then it is
    returned as UTF-8, labelled so, with a prolog of our own in front of its first element.
    """
    probe: dict[str, Any] = {}
    decoded: bytes = convert_to_utf8(headers, content, probe)
    fell_back = isinstance(probe.get("bozo_exception"), feedparser.CharacterEncodingOverride)
    if fell_back and mostly_utf8(content):
        repaired = content.decode("utf-8", errors="replace").encode("utf-8")
        check: dict[str, Any] = {}
        redecoded: bytes = convert_to_utf8(headers, repaired, check)
        # Only if feedparser now reads it as UTF-8 (a UTF-16 label, say, would not).
        if _codec_name(check.get("encoding")) == "utf-8":
            content, decoded = repaired, redecoded
    if not _ENTITY_DECLARATION.search(decoded):
        return content, headers, None
    return _defuse_entities(decoded, headers)


def _codec_name(label: object) -> str | None:
    try:
        return codecs.lookup(label).name if isinstance(label, str) and label else None
    except LookupError:
        return None


def _defuse_entities(
    decoded: bytes, headers: dict[str, str]
) -> tuple[bytes, dict[str, str], str | None]:
    """A UTF-8 document whose prolog declares only entities that cannot grow or reach out."""
    start = _prolog_end(decoded)
    prolog, body = decoded[:start], decoded[start:]
    kept: dict[bytes, bytes] = {}
    for match in _KEPT_ENTITY.finditer(prolog, 0, _PROLOG_LIMIT):
        kept.setdefault(match.group(1), match.group(3))  # XML: the first declaration binds
    if _growth(kept, body) > ENTITY_BUDGET:
        kept = {name: value for name, value in kept.items() if value.startswith(b"&#")}
    declared = len(_ENTITY_DECLARATION.findall(prolog, 0, _PROLOG_LIMIT))
    note = None
    if declared > len(kept) or len(prolog) > _PROLOG_LIMIT:
        note = "ignored the DOCTYPE's external, parameter, nested or oversized entity declarations"
    entities = b"".join(b'<!ENTITY %s "%s">\n' % item for item in kept.items())
    doctype = b"<!DOCTYPE feed [\n" + entities + b"]>\n" if entities else b""
    # Valid UTF-8 whatever feedparser's decoding fell back to, so it reads it back unchanged.
    text = body.decode("utf-8", "replace").encode("utf-8")
    document = b'<?xml version="1.0" encoding="utf-8"?>\n' + doctype + text
    relabelled = {**headers, "content-type": "application/xml; charset=utf-8"} if headers else {}
    return document, relabelled, note


def _growth(entities: Mapping[bytes, bytes], body: bytes) -> int:
    """Characters that expanding the body's references would add (counted up to the budget).

    Only references longer than what they stand for are looked for, so the count takes at
    most ENTITY_BUDGET steps however many references the body holds.
    """
    adds = {
        b"&%s;" % name: len(value) - len(name) - 2
        for name, value in entities.items()
        if not value.startswith(b"&#") and len(value) > len(name) + 2
    }
    if not adds:
        return 0
    total = 0
    for match in re.finditer(b"|".join(map(re.escape, adds)), body):
        total += adds[match.group()]
        if total > ENTITY_BUDGET:
            break
    return total


def _prolog_end(data: bytes) -> int:
    """Where the first element starts, skipping comments, processing instructions and
    declarations (a DOCTYPE with its quoted strings and internal subset) as XML reads them.

    Always the position of a "<" + word character (or the end), so whatever follows the new
    prolog starts with an element for expat and for feedparser's own prolog regex alike.
    """
    pos = 0
    while pos < _PROLOG_LIMIT:
        pos = data.find(b"<", pos)
        if pos < 0:
            return len(data)
        if data.startswith((b"<!--", b"<?"), pos):
            opener = b"<!--" if data.startswith(b"<!--", pos) else b"<?"
            pos = _past(data, _CLOSERS[opener], pos + len(opener))
        elif data.startswith(b"<!", pos):
            pos = _declaration_end(data, pos + 2)
        elif _ELEMENT_START.match(data, pos):
            return pos
        else:
            pos += 1
    found = _ELEMENT_START.search(data, pos)
    return found.start() if found else len(data)


def _declaration_end(data: bytes, pos: int) -> int:
    depth = 0  # inside the internal subset's [ ... ]
    while pos < _PROLOG_LIMIT and (token := _DECLARATION_TOKEN.search(data, pos)):
        pos = token.end()
        mark = token.group()
        if mark in _CLOSERS:
            pos = _past(data, _CLOSERS[mark], pos)
        elif mark == b"[":
            depth += 1
        elif mark == b"]":
            depth = max(0, depth - 1)
        elif depth == 0:  # ">"
            return pos
    return pos if pos >= _PROLOG_LIMIT else len(data)


def _past(data: bytes, closer: bytes, pos: int) -> int:
    end = data.find(closer, pos)
    return len(data) if end < 0 else end + len(closer)
