"""The HTML pages: overview, a feed, an article's timeline, a diff, a version, alerts,
search. Each handler is synchronous: Starlette runs it on a worker thread, so a slow query
never holds up the daemon's event loop."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from watcher.records import VersionRecord
from watcher.storage.browse import ALERT_STATES
from watcher.web.site import NotFound, Site
from watcher.web.views import (
    change_between,
    change_facts,
    next_cursor,
    parse_cursor,
    split_rows,
    words,
)

OVERVIEW_CHANGES = 30


class Pages:
    def __init__(self, site: Site) -> None:
        self.site = site

    def overview(self, request: Request) -> HTMLResponse:
        store = self.site.store
        problems: dict[str, list[str]] = {}
        for problem in store.health_problems():
            problems.setdefault(problem.feed, []).append(problem.reason)
        return self.site.page(
            "overview.html.j2",
            feeds=store.feed_states(),
            problems=problems,
            changes=store.changes(limit=OVERVIEW_CHANGES),
            deliveries=store.delivery_counts(),
        )

    def feed(self, request: Request) -> HTMLResponse:
        name = self.site.feed(request.path_params["name"])
        before = _cursor(request)
        articles = self.site.store.feed_articles(name, limit=50, before=before)
        state = self.site.store.feed_state(name)
        return self.site.page(
            "feed.html.j2",
            feed=state,
            articles=articles,
            next=next_cursor([a.id for a in articles], 50),
        )

    def article(self, request: Request) -> HTMLResponse:
        article = self.site.article(request.path_params["article"])
        versions = self.site.store.versions(article.id)
        timeline = [
            {"v": v, "words": words(v.text), "previous": versions[i - 1] if i else None}
            for i, v in enumerate(versions)
        ]
        events = self.site.store.article_events(article.id)
        return self.site.page(
            "article.html.j2",
            article=article,
            timeline=timeline[::-1],
            versions=versions,
            latest=_stored_pair(article.latest_change, versions),
            events=events[::-1],
        )

    def compare(self, request: Request) -> Response:
        """The version pickers' form lands here and goes on to the diff's own address."""
        article = self.site.article(request.path_params["article"])
        old, new = (
            self.site.version(article, request.query_params.get(k, "")) for k in ("from", "to")
        )
        target = f"/articles/{article.id}/diff/{old.number}/{new.number}"
        return RedirectResponse(target, status_code=303)

    def diff(self, request: Request) -> HTMLResponse:
        site = self.site
        article = site.article(request.path_params["article"])
        old = site.version(article, request.path_params["old"])
        new = site.version(article, request.path_params["new"])
        change = change_between(old, new, site.store.site_furniture(article.host))
        numbers = [v.number for v in site.store.versions(article.id)]
        split = request.query_params.get("view") == "split"
        return site.page(
            "diff.html.j2",
            article=article,
            old=old,
            new=new,
            facts=change_facts(change),
            ops=change.ops,
            rows=split_rows(change.ops) if split else [],
            split=split,
            numbers=numbers,
            previous=_neighbour(numbers, old.number, -1),
            following=_neighbour(numbers, new.number, +1),
        )

    def version(self, request: Request) -> HTMLResponse:
        article = self.site.article(request.path_params["article"])
        version = self.site.version(article, request.path_params["number"])
        return self.site.page(
            "version.html.j2",
            article=article,
            version=version,
            paragraphs=[p for p in version.text.split("\n") if p.strip()],
            words=words(version.text),
        )

    def original(self, request: Request) -> Response:
        """The response a version was made from, as the server sent it (gzip undone): a
        download, never rendered here (it is a stranger's page: it must not run in this
        origin), as ``application/octet-stream`` with a sandboxing policy besides."""
        article = self.site.article(request.path_params["article"])
        version = self.site.version(article, request.path_params["number"])
        if self.site.archive is None or version.warc is None:
            raise NotFound(f"version {version.number} of article {article.id} was not archived")
        body = self.site.archive.read_original(version)
        name = f"article-{article.id}-version-{version.number}.html"
        headers = {
            "content-disposition": f'attachment; filename="{name}"',
            "content-security-policy": "sandbox; default-src 'none'",
            "cache-control": "private, max-age=3600",
        }
        return Response(body, media_type="application/octet-stream", headers=headers)

    def alerts(self, request: Request) -> HTMLResponse:
        store = self.site.store
        rule = request.query_params.get("rule") or None
        state = request.query_params.get("state") or None
        if state is not None and state not in ALERT_STATES:
            raise NotFound(f"no delivery state {state!r}; known: {', '.join(ALERT_STATES)}")
        found = store.alert_page(limit=50, before=_cursor(request), rule=rule, state=state)
        return self.site.page(
            "alerts.html.j2",
            alerts=found,
            rules=store.alert_rules(),
            counts=store.delivery_counts(),
            rule=rule,
            state=state,
            states=ALERT_STATES,
            next=next_cursor([a.id for a in found], 50),
        )

    def search(self, request: Request) -> HTMLResponse:
        text = request.query_params.get("q", "").strip()[:200]
        found = self.site.store.search_articles(text, limit=50) if text else []
        return self.site.page("search.html.j2", q=text, articles=found)


def _cursor(request: Request) -> int | None:
    text = request.query_params.get("before")
    if text is None or text == "":
        return None
    value = parse_cursor(text)
    if value is None:
        raise NotFound(f"bad page cursor {text!r}")
    return value


def _stored_pair(
    pair: tuple[int, int] | None, versions: list[VersionRecord]
) -> tuple[int, int] | None:
    """``pair`` when both its versions are stored (a database from before migration 6 has no
    record of the version live before)."""
    numbers = {v.number for v in versions}
    return pair if pair is not None and set(pair) <= numbers else None


def _neighbour(numbers: list[int], number: int, step: int) -> tuple[int, int] | None:
    """The change just before (``step`` -1) or after (+1) a version: a pair of numbers."""
    if number not in numbers:
        return None
    at = numbers.index(number)
    other = at + step
    if not 0 <= other < len(numbers):
        return None
    pair = (numbers[other], number) if step < 0 else (number, numbers[other])
    return pair
