"""``watcher export URL`` and ``watcher raw URL --version N``: the archived originals of an
article (``archive: {warc: DIR}``). Read-only: no lock, beside ``watcher run``.

``raw`` is meant to become ``watcher show URL --version N --raw``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from watcher.cli.app import State, main, pass_state

if TYPE_CHECKING:
    from watcher.storage.archive import WarcArchive


def _archive(state: State) -> WarcArchive:
    from watcher.storage.archive import WarcArchive

    config = state.config()
    folder = config.warc_dir()
    if folder is None or config.archive is None:
        raise click.ClickException("no archive configured (add `archive: {warc: DIR}`)")
    return WarcArchive(folder)


@main.command()
@click.argument("url")
@click.option("--version", "number", type=int, required=True, metavar="N", help="Version number.")
@click.option("--headers", is_flag=True, help="Print the status line and headers first.")
@pass_state
def raw(state: State, url: str, number: int, headers: bool) -> None:
    """The page a version was made from, as the server sent it (gzip undone), from the WARC
    archive."""
    from watcher.cli.reading import _article

    archive = _archive(state)
    with state.store() as store:
        article = _article(store, url)
        versions = {v.number: v for v in store.versions(article.id)}
    version = versions.get(number)
    if version is None:
        raise click.BadParameter(f"no version {number} of this article", param_hint="--version")
    if headers:
        ref = version.warc
        if ref is None:
            raise click.ClickException(f"version {number} has no archived original")
        head, _body = archive.read_response(ref)
        sys.stdout.buffer.write(head.to_bytes(encoding="latin-1"))
    sys.stdout.buffer.write(archive.read_original(version))
    sys.stdout.buffer.flush()


@main.command()
@click.argument("url")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="File to write (default: stdout)."
)
@pass_state
def export(state: State, url: str, output: str | None) -> None:
    """One WARC file (gzip) with every archived original of an article, oldest first: for
    pywb, a colleague or a court."""
    from watcher.cli.reading import _article

    archive = _archive(state)
    with state.store() as store:
        article = _article(store, url)
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
