"""What every handler shares: the store, the templates, the public address, and the
answers for a thing that does not exist."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jinja2
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from watcher.delivery.render import format_when, safe_link
from watcher.errors import StoreError
from watcher.records import ArticleState, VersionRecord
from watcher.storage.archive import WarcArchive
from watcher.storage.store import Store
from watcher.web.views import parse_id


class NotFound(HTTPException):
    def __init__(self, what: str) -> None:
        super().__init__(404, what)


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("watcher.web", "templates"),
        autoescape=True,  # every page: an article's text is a stranger's
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=format_when, href=safe_link)
    return env


@dataclass
class Site:
    store: Store
    base_url: str | None = None
    env: jinja2.Environment = field(default_factory=templates)
    # The WARC archive of originals (``archive: {warc: DIR}``), when there is one.
    archive: WarcArchive | None = None

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        body = self.env.get_template(name).render(context)
        return HTMLResponse(body, status_code=status, headers={"cache-control": "no-cache"})

    def absolute(self, request: Request, path: str) -> str:
        """A full link: under ``web.base_url`` when set (behind a proxy the request's own
        address is the proxy's view), else the address this request came to."""
        root = self.base_url or str(request.base_url).rstrip("/")
        return root + path

    def article(self, text: str) -> ArticleState:
        article_id = parse_id(text)
        if article_id is None:
            raise NotFound(f"no article {text!r}")
        try:
            return self.store.article(article_id)
        except StoreError:
            raise NotFound(f"no article {article_id}") from None

    def version(self, article: ArticleState, text: str) -> VersionRecord:
        number = parse_id(text)
        found = self.store.version(article.id, number) if number is not None else None
        if found is None:
            raise NotFound(f"article {article.id} has no version {text!r}")
        return found

    def feed_names(self) -> set[str]:
        return {state.name for state in self.store.feed_states()}

    def feed(self, name: str) -> str:
        if name not in self.feed_names():
            raise NotFound(f"no feed {name!r}")
        return name
