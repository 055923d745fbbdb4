"""The OpenAPI 3.1 document of the JSON API (``/openapi.json``), written out rather than
generated: it is the API's contract, and the tests hold the API to it (schemathesis)."""

from __future__ import annotations

from typing import Any

from watcher import __version__
from watcher.storage.browse import ALERT_STATES


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


_TIME = {"type": "string", "format": "date-time"}
_MAYBE_TIME = _nullable("string", format="date-time")
_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
# Any text but NUL: no stored text holds one, and an address with one is refused (400).
_TEXT = {"type": "string", "pattern": "^[^\\x00]*$"}
_PAGE_PARAMS = [
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
    },
    {
        "name": "cursor",
        "in": "query",
        "description": "The `next_cursor` of the page before.",
        "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,9}$"},
    },
]


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": sorted(properties), "properties": properties}


def _paged(item: str) -> dict[str, Any]:
    return _object(
        {
            "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
            "next_cursor": _nullable("string"),
        }
    )


_SCHEMAS: dict[str, Any] = {
    "Error": _object({"error": {"type": "string"}}),
    "Feed": _object(
        {
            "name": {"type": "string"},
            "url": {"type": "string"},
            "title": {"type": "string"},
            "last_polled_at": _MAYBE_TIME,
            "last_success_at": _MAYBE_TIME,
            "next_poll_at": _MAYBE_TIME,
            "last_status": _nullable("integer"),
            "error_streak": {"type": "integer"},
            "last_error": _nullable("string"),
            "disabled": {"type": "boolean"},
            "articles": {"type": "integer"},
        }
    ),
    "ArticleSummary": _object(
        {
            "id": _ID,
            "url": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "string"},
            "first_seen": _TIME,
            "last_checked": _MAYBE_TIME,
            "versions": {"type": "integer"},
            "last_change_at": _MAYBE_TIME,
            "failures": {"type": "integer"},
            "last_error": _nullable("string"),
        }
    ),
    "Version": _object(
        {
            "number": {"type": "integer"},
            "title": {"type": "string"},
            "source": {"type": "string"},
            "fetched_at": _TIME,
            "last_seen_at": _TIME,
            "times_seen": {"type": "integer"},
            "words": {"type": "integer"},
            "classes": {"type": "array", "items": {"type": "string"}},
        }
    ),
    "Article": _object(
        {
            "id": _ID,
            "url": {"type": "string"},
            "link": _nullable("string"),
            "title": {"type": "string"},
            "feeds": {"type": "array", "items": {"type": "string"}},
            "status": {"type": "string"},
            "first_seen": _TIME,
            "last_checked": _MAYBE_TIME,
            "next_check_at": _MAYBE_TIME,
            "checks": {"type": "integer"},
            "failures": {"type": "integer"},
            "last_error": _nullable("string"),
            "current_version": _nullable("integer"),
            "removed_at": _MAYBE_TIME,
            "versions": {"type": "array", "items": {"$ref": "#/components/schemas/Version"}},
            "events": {"type": "array", "items": {"$ref": "#/components/schemas/ArticleEvent"}},
        }
    ),
    "ArticleEvent": _object(
        {
            "kind": {"type": "string", "enum": ["removed", "restored", "moved"]},
            "at": _TIME,
            "reason": {"type": "string"},
            "url": _nullable("string"),
            "status": _nullable("integer"),
        }
    ),
    "Change": _object(
        {
            "id": _ID,
            "article_id": _ID,
            "from": {"type": "integer"},
            "to": {"type": "integer"},
            "title": {"type": "string"},
            "url": {"type": "string"},
            "fetched_at": _TIME,
        }
    ),
    "Diff": _object(
        {
            "article_id": _ID,
            "from": {"type": "integer"},
            "to": {"type": "integer"},
            "headline_changed": {"type": "boolean"},
            "old_title": {"type": "string"},
            "new_title": {"type": "string"},
            "words_added": {"type": "integer"},
            "words_removed": {"type": "integer"},
            **{
                key: {"type": "array", "items": {"type": "string"}}
                for key in ("numbers_removed", "numbers_added", "quotes_removed", "quotes_added")
            },
            "ops": {
                "description": "The word diff: [-1 removed | 0 kept | 1 added, text] pairs.",
                "type": "array",
                # Pairs, written without prefixItems: response validators that read the
                # document with an older JSON Schema draft refuse that keyword's array form.
                "items": {
                    "type": "array",
                    "minItems": 2,
                    "maxItems": 2,
                    "items": {
                        "anyOf": [{"type": "integer", "enum": [-1, 0, 1]}, {"type": "string"}]
                    },
                },
            },
            "page": {"type": "string"},
        }
    ),
    "Alert": {
        "description": "The fields of `watcher alerts --json`.",
        **_object(
            {
                "id": {"type": "integer"},
                "rule": {"type": "string"},
                "event": {"type": "string"},
                "feed": {"type": "string"},
                "url": {"type": "string"},
                "title": {"type": "string"},
                "version": {"type": "integer"},
                "created_at": {"type": "string"},
                "matched": {"type": "array", "items": {"type": "string"}},
                "classes": {"type": "array", "items": {"type": "string"}},
                "added": {"type": "array"},
                "removed": {"type": "array"},
                "delivered": {"type": "boolean"},
                "deliveries": {"type": "array", "items": {"type": "object"}},
                "detail": {"type": "object"},
                "diff_url": _nullable("string"),
            }
        ),
    },
}


def _get(summary: str, ok: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "get": {
            "summary": summary,
            "parameters": params,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"$ref": ok}}},
                },
                "400": {"description": "A bad parameter", "content": error},
                "404": {"description": "No such thing", "content": error},
            },
        }
    }


def openapi_document() -> dict[str, Any]:
    pages = {name: _paged(name) for name in _PAGED}
    # $refs cannot point into a made-up section for every tool: the pages are schemas too.
    schemas = {**_SCHEMAS, **{f"{name}Page": page for name, page in pages.items()}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "watcher",
            "version": __version__,
            "description": "Read-only: the feeds, articles, versions, diffs and alerts "
            "watcher stored. Lists are newest first and cursor-paged.",
        },
        "paths": _paths(),
        "components": {"schemas": schemas},
    }


_PAGED = ("Feed", "ArticleSummary", "Change", "Alert")
_REF = "#/components/schemas/"
_ALERT_PARAMS = [
    {"name": "rule", "in": "query", "schema": _TEXT},
    {"name": "state", "in": "query", "schema": {"type": "string", "enum": list(ALERT_STATES)}},
    *_PAGE_PARAMS,
]


def _paths() -> dict[str, Any]:
    article = _path("article", _ID)
    number = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
    return {
        "/api/v1/feeds": _get("Every feed and its state", _REF + "FeedPage", []),
        "/api/v1/feeds/{name}/articles": _get(
            "A feed's articles, newest first",
            _REF + "ArticleSummaryPage",
            [_path("name", _TEXT), *_PAGE_PARAMS],
        ),
        "/api/v1/articles": _get(
            "Articles, newest first; `q` searches headlines and URLs",
            _REF + "ArticleSummaryPage",
            [{"name": "q", "in": "query", "schema": _TEXT}, *_PAGE_PARAMS],
        ),
        "/api/v1/articles/{article}": _get(
            "An article and its versions (without their text)", _REF + "Article", [article]
        ),
        "/api/v1/articles/{article}/versions/{number}": _get(
            "One version with its text", _REF + "Version", [article, _path("number", number)]
        ),
        "/api/v1/articles/{article}/diff/{from}/{to}": _get(
            "The word diff between two versions",
            _REF + "Diff",
            [article, _path("from", number), _path("to", number)],
        ),
        "/api/v1/changes": _get(
            "Edits (versions after the first), newest first",
            _REF + "ChangePage",
            [{"name": "feed", "in": "query", "schema": _TEXT}, *_PAGE_PARAMS],
        ),
        "/api/v1/alerts": _get("Alerts, newest first", _REF + "AlertPage", _ALERT_PARAMS),
    }
