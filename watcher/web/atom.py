"""Atom feeds of changes: all of them, one feed's, one rule's. Each entry is one change
(a version and the one before it) with its diff as HTML and a link to the diff page.

Feed readers poll: the ETag is worked out from the entries' ids before any diff is
computed, so an ``If-None-Match`` that matches costs two small queries and no diff.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from watcher.records import ChangeRef
from watcher.web.site import NotFound, Site
from watcher.web.views import change_between, change_hunks

ATOM = "http://www.w3.org/2005/Atom"
ENTRIES = 20


@dataclass(frozen=True)
class Entry:
    article_id: int
    old: int
    new: int
    title: str
    url: str
    updated: datetime
    key: str  # what makes the entry this entry: its id in the ETag


class Feeds:
    def __init__(self, site: Site) -> None:
        self.site = site

    def all_changes(self, request: Request) -> Response:
        changes = self.site.store.changes(limit=ENTRIES)
        return self._answer(request, "watcher: every change", "/changes.atom", _entries(changes))

    def feed_changes(self, request: Request) -> Response:
        name = self.site.feed(request.path_params["name"])
        changes = self.site.store.changes(limit=ENTRIES, feed=name)
        path = request.url.path
        return self._answer(request, f"watcher: changes in {name}", path, _entries(changes))

    def rule_changes(self, request: Request) -> Response:
        rule = request.path_params["rule"]
        if rule not in self.site.store.alert_rules():
            raise NotFound(f"no alerts recorded for a rule {rule!r}")
        entries = []
        for alert in self.site.store.alert_page(limit=ENTRIES, rule=rule):
            if not alert.article_id or not alert.version:
                continue  # a feed-health alert: no version to show
            previous = (alert.detail.get("previous") or {}).get("version")
            old = previous if isinstance(previous, int) else alert.version
            entries.append(
                Entry(
                    alert.article_id,
                    old,
                    alert.version,
                    alert.title,
                    alert.url,
                    alert.created_at,
                    f"a{alert.id}",
                )
            )
        path = request.url.path
        return self._answer(request, f"watcher: alerts of the rule {rule}", path, entries)

    def _answer(self, request: Request, title: str, path: str, entries: list[Entry]) -> Response:
        tag = _etag(self.site.absolute(request, path), entries)
        headers = {"etag": tag, "cache-control": "no-cache"}
        offered = _tags(request.headers.get("if-none-match", ""))
        if tag in offered or "*" in offered:
            return Response(status_code=304, headers=headers)
        body = self._document(request, title, path, entries)
        return Response(body, media_type="application/atom+xml; charset=utf-8", headers=headers)

    def _document(self, request: Request, title: str, path: str, entries: list[Entry]) -> bytes:
        feed = ET.Element("feed", xmlns=ATOM)
        ET.SubElement(feed, "title").text = title
        ET.SubElement(feed, "id").text = self.site.absolute(request, path)
        ET.SubElement(feed, "link", rel="self", href=self.site.absolute(request, path))
        ET.SubElement(feed, "link", rel="alternate", href=self.site.absolute(request, "/"))
        newest = max((e.updated for e in entries), default=datetime(2000, 1, 1, tzinfo=UTC))
        ET.SubElement(feed, "updated").text = _iso(newest)
        ET.SubElement(ET.SubElement(feed, "author"), "name").text = "watcher"
        for entry in entries:
            feed.append(self._entry(request, entry))
        body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
        return body

    def _entry(self, request: Request, entry: Entry) -> ET.Element:
        page = f"/articles/{entry.article_id}/diff/{entry.old}/{entry.new}"
        if entry.old == entry.new:
            page = f"/articles/{entry.article_id}/versions/{entry.new}"
        element = ET.Element("entry")
        ET.SubElement(element, "title").text = entry.title or entry.url
        ET.SubElement(element, "id").text = self.site.absolute(request, page)
        ET.SubElement(element, "link", rel="alternate", href=self.site.absolute(request, page))
        ET.SubElement(element, "updated").text = _iso(entry.updated)
        # ElementTree escapes the HTML once more: a reader unescapes it to the markup below,
        # in which every bit of article text is escaped.
        ET.SubElement(element, "content", type="html").text = str(self._diff_html(entry))
        return element

    def _diff_html(self, entry: Entry) -> Markup:
        store = self.site.store
        old, new = (store.version(entry.article_id, n) for n in (entry.old, entry.new))
        if old is None or new is None:
            return Markup("<p>This version is no longer stored.</p>")
        if old.number == new.number:
            return Markup("<p>New article.</p><p>{}</p>").format(new.text[:600])
        furniture = store.site_furniture(store.article(entry.article_id).host)
        change = change_between(old, new, furniture)
        parts = [
            Markup("<p>Version {} → {}: +{} / −{} words</p>").format(
                old.number, new.number, change.words_added, change.words_removed
            )
        ]
        if change.headline_changed:
            parts.append(Markup("<p>Headline was: {}</p>").format(change.old_title))
        for hunk in change_hunks(change):
            parts.append(
                Markup("<p>…{} <del>{}</del> <ins>{}</ins> {}…</p>").format(
                    hunk["before"], hunk["removed"], hunk["added"], hunk["after"]
                )
            )
        return Markup("").join(parts)


def _entries(changes: list[ChangeRef]) -> list[Entry]:
    return [
        Entry(
            c.article_id, c.number - 1, c.number, c.title, c.url, c.fetched_at, f"v{c.version_id}"
        )
        for c in changes
    ]


def _etag(where: str, entries: list[Entry]) -> str:
    digest = hashlib.sha256(where.encode())
    for entry in entries:
        digest.update(f"|{entry.key}".encode())
    return f'"{digest.hexdigest()[:32]}"'


def _tags(header: str) -> set[str]:
    """The entity tags of an If-None-Match (weak ones compare equal, RFC 9110 13.1.2)."""
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
