"""The ASGI application: routes, errors as pages, the guard in front.

Starlette rather than FastAPI: most routes are HTML pages rendered from Jinja2 templates,
the JSON API is eight GET routes whose contract is written out (:mod:`watcher.web.openapi`)
rather than derived from models, and Starlette is the small core FastAPI is built on, so
the view adds one light dependency and no second validation layer beside pydantic.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from watcher.config.models import Config
from watcher.config.services import WebAuth
from watcher.storage.archive import WarcArchive
from watcher.storage.store import Store
from watcher.web.api import Api
from watcher.web.atom import Feeds
from watcher.web.openapi import openapi_document
from watcher.web.pages import Pages
from watcher.web.security import ASGIApp, Guard, Receive, Scope, Send
from watcher.web.site import Site

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Probes:
    """The daemon's /metrics and /healthz, when ``watcher run`` serves the view: given by
    the service layer, so the web view needs to know nothing of schedulers."""

    metrics: Callable[[str], tuple[bytes, str]]  # Accept header → body, content type
    health: Callable[[], tuple[int, dict[str, Any]]]  # → status, body


def archive_of(config: Config) -> WarcArchive | None:
    """The archive of originals the view may serve from (None when it is off)."""
    folder = config.warc_dir()
    return WarcArchive(folder) if folder is not None else None


def create_app(
    store: Store,
    *,
    base_url: str | None = None,
    auth: WebAuth | None = None,
    probes: Probes | None = None,
    archive: WarcArchive | None = None,
) -> ASGIApp:
    """The web view of ``store`` (open it read-only: this app only reads); with ``archive``,
    each version's original response as a download."""
    site = Site(store, base_url, archive=archive)
    routes = [*_view_routes(site), *_asset_routes(), *_probe_routes(probes)]
    errors = _error_handler(site)
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_RefuseNul, errors=errors)],
        exception_handlers={HTTPException: errors, Exception: _crash_handler(site)},
    )
    return Guard(app, auth)


def _view_routes(site: Site) -> list[Route]:
    """The pages, the Atom feeds and the JSON API."""
    pages, feeds, api = Pages(site), Feeds(site), Api(site)
    a = "/articles/{article}"
    return [
        Route("/", pages.overview),
        Route("/feeds/{name}", pages.feed),
        Route(a, pages.article),
        Route(a + "/compare", pages.compare),
        Route(a + "/diff/{old}/{new}", pages.diff),
        Route(a + "/versions/{number}", pages.version),
        Route(a + "/versions/{number}/original", pages.original),
        Route("/alerts", pages.alerts),
        Route("/search", pages.search),
        Route("/changes.atom", feeds.all_changes),
        Route("/feeds/{name}/changes.atom", feeds.feed_changes),
        Route("/rules/{rule}/changes.atom", feeds.rule_changes),
        Route("/api/v1/feeds", api.feeds),
        Route("/api/v1/feeds/{name}/articles", api.feed_articles),
        Route("/api/v1/articles", api.articles),
        Route("/api/v1" + a, api.article),
        Route("/api/v1" + a + "/versions/{number}", api.version),
        Route("/api/v1" + a + "/diff/{old}/{new}", api.diff),
        Route("/api/v1/changes", api.changes),
        Route("/api/v1/alerts", api.alerts),
    ]


def _asset_routes() -> list[Route]:
    """The stylesheet (with an ETag), the OpenAPI document and the favicon."""
    style = resources.files("watcher.web").joinpath("static/style.css").read_bytes()
    style_tag = '"' + hashlib.sha256(style).hexdigest()[:16] + '"'
    document = openapi_document()

    def stylesheet(request: Request) -> Response:
        headers = {"etag": style_tag, "cache-control": "public, max-age=3600"}
        if request.headers.get("if-none-match") == style_tag:
            return Response(status_code=304, headers=headers)
        return Response(style, media_type="text/css; charset=utf-8", headers=headers)

    def openapi(request: Request) -> JSONResponse:
        return JSONResponse(document)

    return [
        Route("/openapi.json", openapi),
        Route("/static/style.css", stylesheet),
        # Browsers ask for it on every site: an empty answer, not a 404 in their console.
        Route("/favicon.ico", lambda request: Response(status_code=204)),
    ]


class _RefuseNul:
    """A NUL character in the path or the query is a 400, before any route: no text stored
    can hold one (PostgreSQL refuses it in a parameter, which would be a 500)."""

    def __init__(self, app: ASGIApp, errors: Callable[[Request, Exception], Response]) -> None:
        self.app = app
        self.errors = errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = bytes(scope.get("query_string", b""))
        if scope["type"] == "http" and ("\0" in scope["path"] or b"\0" in unquote_to_bytes(query)):
            refusal = HTTPException(400, "the address holds a NUL character")
            await self.errors(Request(scope), refusal)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _probe_routes(probes: Probes | None) -> list[Route]:
    if probes is None:
        return []

    # Answered on the event loop itself (async): a stuck loop answers nothing, as the
    # exporter's own endpoint does.
    async def metrics(request: Request) -> Response:
        body, content_type = probes.metrics(request.headers.get("accept", ""))
        return Response(body, media_type=content_type, headers={"cache-control": "no-store"})

    async def healthz(request: Request) -> Response:
        status, body = probes.health()
        return JSONResponse(body, status_code=status, headers={"cache-control": "no-store"})

    return [Route("/metrics", metrics), Route("/healthz", healthz)]


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


def _error_handler(site: Site) -> Callable[[Request, Exception], Response]:
    def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if _wants_json(request):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=headers)
        response = site.page(
            "error.html.j2", exc.status_code, code=exc.status_code, what=exc.detail
        )
        response.headers.update(headers)
        return response

    return handle


def _crash_handler(site: Site) -> Callable[[Request, Exception], Response]:
    def handle(request: Request, exc: Exception) -> Response:
        log.error("web: %s %s failed", request.method, request.url.path, exc_info=exc)
        what = "something went wrong on this page; the log has the details"
        if _wants_json(request):
            return JSONResponse({"error": what}, status_code=500)
        return site.page("error.html.j2", 500, code=500, what=what)

    return handle
