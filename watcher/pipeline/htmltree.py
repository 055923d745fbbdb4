"""A page parsed into the tree trafilatura reads: trafilatura's own steps, a faster parser.

``trafilatura.load_html`` parses with lxml.html's parser, whose element-class lookup is
Python code that runs for every element object lxml makes (``HtmlElementClassLookup``): on
the corpus pages about 7% of an extraction, as trafilatura and the recall pass walk the
tree. :func:`parser` has trafilatura's parser options and lxml's C-level default lookup
instead, so every element is a plain ``HtmlElement``; lxml.html's form classes
(``FormElement``, ``InputElement`` ...) are used by neither trafilatura nor watcher.

The steps around the parse are load_html's for a str, done by trafilatura's own functions:
the repair of faulty markup, the bytes fallback, and the refusal of a document that is not
HTML. A test checks on the corpus that the tree equals the one load_html makes, so a
trafilatura that changes its loading is noticed.
"""

from __future__ import annotations

import logging
import threading

# lxml ships no type information, and the mypy config only exempts the packages it lists.
from lxml import etree  # type: ignore[import-untyped]
from lxml import html as lxml_html
from trafilatura.utils import is_dubious_html, repair_faulty_html

__all__ = ["parse_page", "parser"]

log = logging.getLogger(__name__)

_LOOKUP = etree.ElementDefaultClassLookup(
    element=lxml_html.HtmlElement,
    comment=lxml_html.HtmlComment,
    pi=lxml_html.HtmlProcessingInstruction,
    entity=lxml_html.HtmlEntity,
)
# An lxml parser must not serve two threads at once: one per thread.
_per_thread = threading.local()


def parser() -> lxml_html.HTMLParser:
    """This thread's parser: trafilatura's options, lxml's C-level element classes."""
    made = getattr(_per_thread, "parser", None)
    if made is None:
        made = _per_thread.parser = lxml_html.HTMLParser(
            collect_ids=False,
            default_doctype=False,
            encoding="utf-8",
            remove_comments=True,
            remove_pis=True,
        )
        made.set_element_class_lookup(_LOOKUP)
    return made


def parse_page(page: str) -> lxml_html.HtmlElement | None:
    """The page's tree as ``trafilatura.load_html`` would give it; None if not HTML."""
    beginning = page[:50].lower()
    page = repair_faulty_html(page, beginning)
    as_bytes = False
    try:
        tree = lxml_html.fromstring(page, parser=parser())
    except ValueError:  # a str that declares its encoding: lxml wants bytes then
        tree, as_bytes = _from_bytes(page), True
    except etree.LxmlError as error:  # "Document is empty" and the like: bytes may still do
        log.debug("lxml could not parse the page: %s", error)
        tree = None
    if (tree is None or len(tree) < 1) and not as_bytes:
        tree = _from_bytes(page)
    if tree is not None and is_dubious_html(beginning) and len(tree) < 2:
        return None  # a lone fragment, not a document
    return tree


def _from_bytes(page: str) -> lxml_html.HtmlElement | None:
    try:
        return lxml_html.fromstring(page.encode("utf8", "surrogatepass"), parser=parser())
    except (etree.LxmlError, ValueError) as error:
        log.debug("lxml could not parse the page as bytes either: %s", error)
        return None
