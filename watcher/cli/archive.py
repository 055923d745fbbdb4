"""``watcher export URL`` and ``watcher show URL --raw``: the archived originals of an
article (``archive: {warc: DIR}``). Read-only: no lock, beside ``watcher run``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from watcher.cli.app import State, main, pass_state

if TYPE_CHECKING:
    from watcher.records import VersionRecord
    from watcher.storage.archive import WarcArchive


def _archive(state: State) -> WarcArchive:
    from watcher.storage.archive import WarcArchive

    config = state.config()
    folder = config.warc_dir()
    if folder is None or config.archive is None:
        raise click.ClickException("no archive configured (add `archive: {warc: DIR}`)")
    return WarcArchive(folder)


def print_original(state: State, version: VersionRecord, *, with_headers: bool) -> None:
    """Write a version's original response body (and its head first, ``with_headers``) to
    standard output, byte for byte: ``watcher show URL --raw``."""
    archive = _archive(state)
    if version.warc is None:
        raise click.ClickException(f"version {version.number} has no archived original")
    if with_headers:
        head, _body = archive.read_response(version.warc)
        sys.stdout.buffer.write(head.to_bytes(encoding="latin-1"))
    sys.stdout.buffer.write(archive.read_original(version))
    sys.stdout.buffer.flush()


@main.command(
    epilog="""\b
Examples:
  watcher export https://news.example.org/story -o story.warc.gz
  watcher export https://news.example.org/story | warcio index -"""
)
@click.argument("url")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="File to write (default: stdout)."
)
@pass_state
def export(state: State, url: str, output: str | None) -> None:
    """One WARC file (gzip) with every archived original of an article, oldest first: for
    pywb, a colleague or a court."""
    from watcher.cli.reading import find_article

    archive = _archive(state)
    with state.store() as store:
        article = find_article(store, url)
        refs = [v.warc for v in store.versions(article.id) if v.warc is not None]
    if not refs:
        raise click.ClickException("no archived original for this article")
    if output is None:
        archive.copy_records(refs, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    with open(output, "wb") as stream:
        count = archive.copy_records(refs, stream)
    click.echo(f"{count} versions written to {output}", err=True)
