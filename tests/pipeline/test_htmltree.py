"""The page's tree is the one ``trafilatura.load_html`` makes, element for element, on the
real pages of the corpus and on the odd documents load_html has steps for; only the
element classes differ (plain HtmlElement, made by lxml's C lookup)."""

from __future__ import annotations

import gzip
import threading

import pytest
import trafilatura
from lxml import etree, html  # type: ignore[import-untyped]

from support.paths import CORPORA
from watcher.pipeline.decode import decode_bytes, fold_source_newlines
from watcher.pipeline.htmltree import parse_page, parser

PAGES = sorted((CORPORA / "article-extraction" / "html").glob("*.html.gz"))

ODD = [
    '<?xml version="1.0" encoding="utf-8"?><html><body><p>declared encoding</p></body></html>',
    "<!DOCTYPE html>\n<html><body><p>doctype first</p></body></html>",
    "<html/>\n<body><p>a self-closing html tag</p></body>",
    "<p>a lone fragment</p>",
    "<div><p>one</p><p>two</p></div>",
    "plain words, no markup at all",
    "   ",
    "<html><body><p>control \x00\x01 characters</p></body></html>",
    "<html><body><p>surrogate \ud800 half</p></body></html>",
    "<html><!-- a comment --><?pi here?><body><p>x</p></body></html>",
]


def same_tree(page: str) -> None:
    ours, theirs = parse_page(page), trafilatura.load_html(page)
    if theirs is None:
        assert ours is None
        return
    assert ours is not None
    assert etree.tostring(ours, encoding=str) == etree.tostring(theirs, encoding=str)


@pytest.mark.parametrize("page", ODD)
def test_odd_documents_load_as_trafilatura_loads_them(page: str) -> None:
    same_tree(page)


def test_every_corpus_page_loads_as_trafilatura_loads_it() -> None:
    if not PAGES:
        pytest.skip(f"article-extraction corpus not found under {CORPORA}")
    for path in PAGES:
        same_tree(fold_source_newlines(decode_bytes(gzip.decompress(path.read_bytes()), None)))


def test_every_element_is_a_plain_html_element() -> None:
    tree = parse_page("<html><body><form><input name=q><select></select></form></body></html>")
    assert tree is not None
    assert {type(element) for element in tree.iter()} == {html.HtmlElement}
    tree.find(".//form").drop_tree()  # lxml.html's own methods are still there


def test_each_thread_has_its_own_parser() -> None:
    mine = parser()
    theirs: list[object] = []
    worker = threading.Thread(target=lambda: theirs.append(parser()))
    worker.start()
    worker.join()
    assert parser() is mine and theirs[0] is not mine
