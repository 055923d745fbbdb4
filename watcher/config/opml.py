"""OPML subscription lists in and out: ``feeds_from: [subscriptions.opml]`` and
``watcher feeds --opml``.

Every feed reader exports OPML (1.0 or 2.0): ``<outline>`` elements, nested in folders, a
feed being any outline with an ``xmlUrl`` (OPML 1.0 exports often carry no ``type``). Its
``title`` (else ``text``) becomes the feed's name, its ``category`` and the folders above
it its tags.

The file is read with the standard library's expat, with every DTD refused: no entity is
expanded, none is fetched, so a "billion laughs" or an external entity cannot hurt (the
checks defusedxml makes, done here because expat also gives the line of each outline for
error messages). Lives in ``config`` because the config loader reads it (SIGHUP too).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers import expat

from watcher.errors import ConfigError

__all__ = ["OpmlFeed", "feeds_to_opml", "read_opml", "unique_names"]

# A subscription list of a million outlines is a mistake, not a newsroom.
MAX_OPML_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class OpmlFeed:
    """One subscription: where it is in the file, its URL, its name and its tags."""

    url: str
    title: str
    tags: tuple[str, ...]
    line: int


@dataclass
class _Reader:
    """Expat callbacks: the folder stack and the feeds found so far."""

    file: str
    parser: Any
    folders: list[str | None] = field(default_factory=list)
    feeds: list[OpmlFeed] = field(default_factory=list)
    root: str | None = None

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        if self.root is None:
            self.root = tag
            if tag.lower() != "opml":
                raise self.error(f"not an OPML file: the root element is <{tag}>, not <opml>")
        if tag.lower() != "outline":
            return
        attrs = {key.lower(): value.strip() for key, value in attributes.items()}
        label = attrs.get("title") or attrs.get("text") or ""
        url = attrs.get("xmlurl", "")
        # A feed outline's children (rare) are not in a folder named after the feed.
        self.folders.append(None if url else label or None)
        if url:
            tags = [f for f in self.folders[:-1] if f] + _categories(attrs.get("category", ""))
            line = int(self.parser.CurrentLineNumber)
            self.feeds.append(OpmlFeed(url, label, tuple(dict.fromkeys(tags)), line))

    def end(self, tag: str) -> None:
        if tag.lower() == "outline":
            self.folders.pop()

    def refuse_dtd(self, *_args: object) -> int:
        raise self.error("a DTD or entity declaration is not allowed in an OPML file")

    def error(self, problem: str) -> ConfigError:
        return ConfigError(problem, file=self.file, line=int(self.parser.CurrentLineNumber))


def _categories(value: str) -> list[str]:
    """OPML 2.0 ``category``: comma-separated, each possibly a slash path (``/News/World``)."""
    return [part.strip() for item in value.split(",") for part in item.split("/") if part.strip()]


def read_opml(path: Path, shown_as: str | None = None) -> list[OpmlFeed]:
    """The feeds of an OPML file, in document order; ConfigError naming file and line."""
    label = shown_as or str(path)
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_OPML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the OPML file: {exc.strerror or exc}", file=label) from None
    if len(data) > MAX_OPML_BYTES:
        raise ConfigError(f"OPML file larger than {MAX_OPML_BYTES} bytes", file=label)
    return parse_opml(data, label)


def parse_opml(data: bytes, file: str) -> list[OpmlFeed]:
    parser = expat.ParserCreate()
    reader = _Reader(file, parser)
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    # No DTD at all: entities can neither be declared (expansion bombs) nor fetched.
    parser.StartDoctypeDeclHandler = reader.refuse_dtd
    parser.EntityDeclHandler = reader.refuse_dtd
    parser.ExternalEntityRefHandler = reader.refuse_dtd
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        problem = expat.errors.messages.get(exc.code, str(exc))
        raise ConfigError(f"invalid OPML (XML): {problem}", file=file, line=exc.lineno) from None
    if reader.root is None:
        raise ConfigError("empty OPML file", file=file, line=1)
    return reader.feeds


def slug(text: str) -> str:
    """A feed name from a title: ASCII letters, digits, ``.``, ``_`` and ``-``."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^\w.]+", "-", folded.lower()).strip("-._")[:60].strip("-._")


def unique_names(feeds: Sequence[OpmlFeed], taken: Iterable[str]) -> list[str]:
    """A name per feed, unique among themselves and ``taken`` (the YAML feeds' names).

    Stable: a name depends only on the feed's title and URL and on the feeds *before* it, so
    feeds appended to the file later do not rename earlier ones. A clash gets a suffix from
    the URL's hash (not a counter, which would change with the order of the file).
    """
    used = set(taken)
    names: list[str] = []
    for feed in feeds:
        base = slug(feed.title) or slug(_host_and_path(feed.url)) or "feed"
        name = base
        if name in used:
            digest = hashlib.sha1(feed.url.encode(), usedforsecurity=False).hexdigest()
            name = f"{base}-{digest[:6]}"
            for extra in range(2, 1000):
                if name not in used:
                    break
                name = f"{base}-{digest[:6]}-{extra}"
        used.add(name)
        names.append(name)
    return names


def _host_and_path(url: str) -> str:
    return re.sub(r"^[a-z]+://", "", url, flags=re.IGNORECASE)


def feeds_to_opml(feeds: Iterable[tuple[str, str, Sequence[str]]], title: str) -> str:
    """OPML 2.0 of ``(name, url, tags)``: one flat list, tags as ``category`` (readers that
    import categories as folders put each feed in its first tag's folder)."""
    # Here, not at the top: xml.sax.saxutils imports urllib.request (http.client, email...),
    # which every config load would pay for; only `watcher feeds --opml` writes OPML.
    from xml.sax.saxutils import escape, quoteattr

    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        f"  <head><title>{escape(title)}</title></head>",
        "  <body>",
    ]
    for name, url, tags in feeds:
        named = quoteattr(name)
        attrs = f'type="rss" text={named} title={named} xmlUrl={quoteattr(url)}'
        if tags:
            attrs += f" category={quoteattr(','.join(tags))}"
        lines.append(f"    <outline {attrs}/>")
    lines += ["  </body>", "</opml>"]
    return "\n".join(lines) + "\n"

