"""The live pages ``watcher status`` and ``watcher feeds`` show: tracked articles that changed
on most of their recent checks (see :mod:`watcher.pipeline.livepages`)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from watcher.config.models import Config
    from watcher.storage.reads import ReadQueries


def live_pages(config: Config, store: ReadQueries) -> list[dict[str, Any]]:
    """Each live page: id, url, title, feeds, and its changes among its last checks."""
    from watcher.pipeline.livepages import live_fact

    settings = config.live_pages
    if not settings.enabled:
        return []
    pages = []
    for article in store.changing_articles(settings.changes):
        fact = live_fact(article.recent_checks, settings)
        if fact is not None:
            pages.append(
                {
                    "id": article.id,
                    "url": article.url,
                    "title": article.title,
                    "feeds": list(article.feeds),
                    **fact,
                }
            )
    return pages


def live_per_feed(pages: list[dict[str, Any]]) -> Counter[str]:
    return Counter(feed for page in pages for feed in page["feeds"])


def print_live(pages: list[dict[str, Any]], config: Config) -> None:
    settings = config.live_pages
    if not pages:
        return
    click.echo(
        f"live pages ({len(pages)}; changed on {settings.changes}+ of their last "
        f"{settings.checks} checks, alerts in one digest per article each "
        f"{_period(settings.digest.total_seconds())}):"
    )
    for page in pages:
        click.echo(f"  {page['url']}\t{page['changes']} of {page['checks']} checks changed")


def _period(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
