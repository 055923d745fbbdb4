"""``watcher discover URL``: the feeds a site offers, as YAML lines ready to paste."""

from __future__ import annotations

import click

from watcher.cli.app import State, main, pass_state


@main.command(
    epilog="""\b
Examples:
  watcher discover https://www.example.org/
  watcher discover https://www.example.org/ >> watcher.yaml   # then tidy the feeds: list"""
)
@click.argument("url")
@click.option(
    "--allow-private-networks",
    is_flag=True,
    help="Also reach private and loopback addresses (an intranet site).",
)
@pass_state
def discover(state: State, url: str, allow_private_networks: bool) -> None:
    """List the feeds of the site at URL: its <link rel="alternate"> feeds, then the usual
    paths (/feed, /rss.xml, ...), each fetched and parsed, as `feeds:` entries to paste.

    Fetched with the default limits and, unless --allow-private-networks, only from public
    addresses (the guard article links get). Needs no config file."""
    import asyncio
    import json

    from watcher.config.models import check_http_url
    from watcher.config.opml import OpmlFeed, unique_names
    from watcher.pipeline.discover import FoundFeed, discover_feeds
    from watcher.pipeline.fetch import Fetcher
    from watcher.pipeline.netguard import url_guard

    try:
        url = check_http_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="URL") from None

    async def run() -> list[FoundFeed]:
        async with Fetcher() as fetcher:
            guard = None if allow_private_networks else url_guard()
            return await discover_feeds(fetcher, url, guard)

    found = asyncio.run(run())
    if not found:
        click.echo(f"# no feed found at {url}")
        raise SystemExit(1)
    names = unique_names([OpmlFeed(f.url, f.title, (), 0) for f in found], ())
    click.echo(f"# {len(found)} feed{'s' if len(found) != 1 else ''} found at {url}")
    click.echo("feeds:")
    for name, feed in zip(names, found, strict=True):
        title = " ".join(feed.title.split())[:80] or "untitled"
        entries = f"{feed.entries} entr{'y' if feed.entries == 1 else 'ies'}"
        click.echo(f"  - {{name: {name}, url: {json.dumps(feed.url)}}}  # {title}, {entries}")
