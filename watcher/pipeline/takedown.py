"""Take-downs and moves: what a page's answer says about the article besides its text.

- **Gone**: the page answers 404 or 410, or a redirect leads to the site's front page (a
  path of depth 0 such as ``/`` or ``/index.html``, or the folder the feed itself is in, as
  ``/en/`` for ``/en/rss.xml``). One such answer is a failed check like any other; the
  :data:`REMOVED_AFTER`-th in a row makes the article ``removed``. A 5xx, a timeout or a
  refused connection says nothing about the article: it neither counts nor resets the count.
- **Restored**: a removed article whose page answers with the article again.
- **Moved**: the link answers with a permanent redirect (301, 308) to another URL on the same
  site that is not its front page. The redirect is followed; the article is fetched at the
  new URL from then on and both URLs name it. Not an edit: the text is compared as usual.

``removed`` and ``restored`` are events rules can name; a move raises no alert of its own.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from http import HTTPStatus
from urllib.parse import urlsplit

from watcher.errors import FetchError
from watcher.pipeline.diff import body_after_title, document
from watcher.pipeline.fetch import FetchResult, StatusError
from watcher.pipeline.judge import alert_detail
from watcher.pipeline.rules import Rule, Subject, evaluate
from watcher.pipeline.urls import canonical_url
from watcher.records import ArticleState, NewAlert, NewArticleEvent

GONE_STATUSES = frozenset({404, 410})
PERMANENT_REDIRECTS = frozenset({301, 308})
# Gone answers in a row that make an article removed: one 404 may be a publishing glitch.
REMOVED_AFTER = 2
_INDEX_PAGES = frozenset({"index", "default", "home"})


class FrontPageRedirect(FetchError):
    """The article's link now redirects to the site's front page: the story is gone."""

    def __init__(self, url: str, final_url: str) -> None:
        super().__init__(url, f"redirected to the site's front page {final_url}")
        self.final_url = final_url


@dataclass(frozen=True)
class Gone:
    """One answer saying the page is gone."""

    reason: str  # "HTTP 404 Not Found", "a redirect to the front page https://..."
    status: int | None = None


def gone_answer(exc: BaseException) -> Gone | None:
    """The gone answer a failed fetch was, or None when it was another failure."""
    if isinstance(exc, FrontPageRedirect):
        return Gone(f"a redirect to the front page {exc.final_url}")
    if isinstance(exc, StatusError) and exc.status in GONE_STATUSES:
        status = exc.status
        assert status is not None
        return Gone(f"HTTP {status} {HTTPStatus(status).phrase}", status)
    return None


def is_front_page(url: str, feed_urls: Iterable[str] = ()) -> bool:
    """A site's front page: a path of depth 0 (``/``, ``/index.html``), or the folder a feed
    of the site is in (``/en/`` for ``/en/rss.xml``)."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if not segments or (len(segments) == 1 and segments[0].split(".")[0] in _INDEX_PAGES):
        return True
    for feed_url in feed_urls:
        feed = urlsplit(feed_url)
        folder = feed.path.rsplit("/", 1)[0].strip("/")
        if folder and _host(feed_url) == _host(url) and parts.path.strip("/") == folder:
            return True
    return False


def front_page_redirect(link: str, result: FetchResult, feed_urls: Iterable[str]) -> bool:
    """Whether following ``link``'s redirects ended on the site's front page."""
    return (
        bool(result.redirects)
        and not is_front_page(link)
        and is_front_page(result.final_url, feed_urls)
    )


def moved_to(link: str, result: FetchResult) -> str | None:
    """The URL a permanent redirect moved the article to, or None: the redirects followed
    from ``link`` begin with 301s or 308s to another URL of the same site."""
    target = None
    for redirect in result.redirects:
        if redirect.status not in PERMANENT_REDIRECTS:
            break
        target = redirect.url
    if target is None or _canonical(target) == _canonical(link):
        return None
    if _host(target) != _host(link) or is_front_page(target):
        return None
    return target


def move(link: str, target: str, url: str) -> NewArticleEvent:
    """The ``moved`` event: from now on fetch ``target``; the canonical forms of the old
    link, the new one and the article's own URL all name it."""
    aliases = tuple(dict.fromkeys(_canonical(u) for u in (target, link, url)))
    return NewArticleEvent("moved", f"moved to {target}", url=target, aliases=aliases)


def removal(
    article: ArticleState,
    gone: Gone,
    page: tuple[str, str],
    rules: Sequence[Rule],
    tags: frozenset[str],
) -> NewArticleEvent | None:
    """The ``removed`` event when this gone answer makes the article removed (``page`` is
    the title and text last seen, what rules judge), else None."""
    if article.removed or article.gone_checks + 1 < REMOVED_AFTER:
        return None
    reason = f"{gone.reason} on {REMOVED_AFTER} checks in a row"
    alerts = _alerts("removed", article, page, rules, tags, reason)
    return NewArticleEvent("removed", reason, status=gone.status, alerts=alerts)


def restoration(
    article: ArticleState, page: tuple[str, str], rules: Sequence[Rule], tags: frozenset[str]
) -> NewArticleEvent | None:
    """The ``restored`` event when a removed article's page shows the article again."""
    if article.removed_at is None:
        return None
    since = article.removed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    reason = f"the article is back (removed since {since})"
    return NewArticleEvent(
        "restored", reason, alerts=_alerts("restored", article, page, rules, tags, reason)
    )


def _alerts(
    event: str,
    article: ArticleState,
    page: tuple[str, str],
    rules: Sequence[Rule],
    tags: frozenset[str],
    reason: str,
) -> tuple[NewAlert, ...]:
    """The rules' alerts for a removed or restored article: a keyword rule judges the text
    taken down (or back) as it judges a new article's."""
    title, text = page
    subject = Subject(event, article.feeds, tags, document(title, body_after_title(title, text)))
    feed = article.feeds[0] if article.feeds else ""
    alerts = []
    for match in evaluate(rules, subject):
        detail = {**alert_detail(match, subject), "reason": reason}
        if event == "removed":  # the excerpt is of the text taken down
            detail["removed"], detail["added"] = detail["added"], []
        alerts.append(NewAlert(match.rule, match.event, feed, match.matched, detail))
    return tuple(alerts)


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").removeprefix("www.")


def _canonical(url: str) -> str:
    try:
        return canonical_url(url)
    except ValueError:
        return url
