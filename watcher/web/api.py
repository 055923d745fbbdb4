"""The JSON API under ``/api/v1/``, described by ``/openapi.json`` (:mod:`watcher.web.openapi`).

Lists are newest first and cursor-paged: ``?limit=N`` (1-200, default 50) and
``?cursor=C`` from the ``next_cursor`` of the page before (null on the last page). Alerts
have exactly the fields of ``watcher alerts --json`` (one function makes both).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from watcher.delivery.links import alert_json
from watcher.records import ArticleState, BrowsedArticle, ChangeRef, FeedState, VersionRecord
from watcher.storage.browse import ALERT_STATES
from watcher.web.site import Site
from watcher.web.views import (
    change_between,
    change_facts,
    next_cursor,
    parse_cursor,
    parse_limit,
    words,
)


class BadRequest(HTTPException):
    def __init__(self, what: str) -> None:
        super().__init__(400, what)


class Api:
    def __init__(self, site: Site) -> None:
        self.site = site

    def feeds(self, request: Request) -> JSONResponse:
        return _json(
            {"items": [_feed(s) for s in self.site.store.feed_states()], "next_cursor": None}
        )

    def feed_articles(self, request: Request) -> JSONResponse:
        name = self.site.feed(request.path_params["name"])
        limit, before = _paging(request)
        found = self.site.store.feed_articles(name, limit=limit, before=before)
        return _page([_summary(a) for a in found], [a.id for a in found], limit)

    def articles(self, request: Request) -> JSONResponse:
        limit, before = _paging(request)
        text = request.query_params.get("q", "")[:200]
        found = self.site.store.search_articles(text, limit=limit, before=before)
        return _page([_summary(a) for a in found], [a.id for a in found], limit)

    def article(self, request: Request) -> JSONResponse:
        article = self.site.article(request.path_params["article"])
        versions = self.site.store.versions(article.id)
        events = [e.shown() for e in self.site.store.article_events(article.id)]
        shown = {**_article(article), "versions": [_version(v) for v in versions]}
        return _json({**shown, "events": events})

    def version(self, request: Request) -> JSONResponse:
        article = self.site.article(request.path_params["article"])
        version = self.site.version(article, request.path_params["number"])
        return _json({**_version(version), "text": version.text})

    def diff(self, request: Request) -> JSONResponse:
        site = self.site
        article = site.article(request.path_params["article"])
        old = site.version(article, request.path_params["old"])
        new = site.version(article, request.path_params["new"])
        change = change_between(old, new, site.store.site_furniture(article.host))
        return _json(
            {
                "article_id": article.id,
                "from": old.number,
                "to": new.number,
                **change_facts(change),
                "ops": [[op, text] for op, text in change.ops],
                "page": site.absolute(
                    request, f"/articles/{article.id}/diff/{old.number}/{new.number}"
                ),
            }
        )

    def changes(self, request: Request) -> JSONResponse:
        limit, before = _paging(request)
        feed = request.query_params.get("feed")
        if feed is not None:
            self.site.feed(feed)
        found = self.site.store.changes(limit=limit, before=before, feed=feed)
        return _page([_change(c) for c in found], [c.version_id for c in found], limit)

    def alerts(self, request: Request) -> JSONResponse:
        limit, before = _paging(request)
        state = request.query_params.get("state") or None
        if state is not None and state not in ALERT_STATES:
            raise BadRequest(f"state must be one of {', '.join(ALERT_STATES)}")
        rule = request.query_params.get("rule") or None
        found = self.site.store.alert_page(limit=limit, before=before, rule=rule, state=state)
        items = [alert_json(a, self.site.base_url) for a in found]
        return _page(items, [a.id for a in found], limit)


def _paging(request: Request) -> tuple[int, int | None]:
    limit = parse_limit(request.query_params.get("limit"))
    if limit is None:
        raise BadRequest("limit must be a whole number from 1 to 200")
    cursor = request.query_params.get("cursor")
    if cursor is None or cursor == "":
        return limit, None
    before = parse_cursor(cursor)
    if before is None:
        raise BadRequest("cursor must be a next_cursor this API gave")
    return limit, before


def _page(items: list[dict[str, Any]], ids: list[int], limit: int) -> JSONResponse:
    return _json({"items": items, "next_cursor": next_cursor(ids, limit)})


def _json(payload: dict[str, Any]) -> JSONResponse:
    return JSONResponse(_plain(payload), headers={"cache-control": "no-cache"})


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _feed(state: FeedState) -> dict[str, Any]:
    return {
        "name": state.name,
        "url": state.url,
        "title": state.title,
        "last_polled_at": state.last_polled_at,
        "last_success_at": state.last_success_at,
        "next_poll_at": state.next_poll_at,
        "last_status": state.last_status,
        "error_streak": state.error_streak,
        "last_error": state.last_error,
        "disabled": state.disabled_at is not None,
        "articles": state.articles,
    }


def _summary(a: BrowsedArticle) -> dict[str, Any]:
    # The API's article summary is the record itself, field for field.
    return asdict(a)


def _article(a: ArticleState) -> dict[str, Any]:
    return {
        "id": a.id,
        "url": a.url,
        "link": a.link,
        "title": a.entry_title,
        "feeds": list(a.feeds),
        "status": a.status,
        "first_seen": a.first_seen,
        "last_checked": a.last_checked,
        "next_check_at": a.next_check_at,
        "checks": a.checks,
        "failures": a.failures,
        "last_error": a.last_error,
        "current_version": a.current_version,
        "removed_at": a.removed_at,
    }


def _version(v: VersionRecord) -> dict[str, Any]:
    return {
        "number": v.number,
        "title": v.title,
        "source": v.source,
        "fetched_at": v.fetched_at,
        "last_seen_at": v.last_seen_at,
        "times_seen": v.times_seen,
        "words": words(v.text),
        "classes": v.classes.split(),
    }


def _change(c: ChangeRef) -> dict[str, Any]:
    return {
        "id": c.version_id,
        "article_id": c.article_id,
        "from": c.number - 1,
        "to": c.number,
        "title": c.title,
        "url": c.url,
        "fetched_at": c.fetched_at,
    }
