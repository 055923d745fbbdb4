"""A one-feed, one-article newsroom for header tests: the documents, the config, and what
counts as a crash in the log (shared by tests/test_headers.py and its property test)."""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence

from watcher.config.loading import parse_config
from watcher.config.models import Config

STORY = (
    "The council voted on Tuesday to reopen the old harbour bridge to cyclists after two "
    "years of repairs, the mayor said, adding that cars would follow in the spring."
)
PAGE = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Bridge</title></head><body>"
    f"<main><article><h1>Bridge reopens</h1><p>{STORY}</p><p>{STORY[::-1]}</p>"
    "</article></main></body></html>"
).encode()
RSS_TYPE = "application/rss+xml"
HTML_TYPE = "text/html; charset=utf-8"


def feed_body(link: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Wire</title>'
        f"<item><title>Bridge reopens</title><link>{html.escape(link)}</link>"
        f"<guid>bridge-1</guid><description>{STORY}</description></item></channel></rss>"
    ).encode()


def make_config(feed_url: str) -> Config:
    return parse_config(
        f"""
allow_private_networks: true  # every server here is on 127.0.0.1
defaults: {{interval: 10m, recheck: [{{until: 30d, every: 1h}}]}}
fetch: {{deadline: 3s, read_timeout: 3s}}
feeds: [{{name: wire, url: "{feed_url}"}}]
rules: [{{name: everything, events: [new, changed]}}]
"""
    )


def tracebacks(records: Sequence[logging.LogRecord]) -> list[str]:
    """Log lines a user would read as "watcher crashed": tracebacks and errors."""
    return [
        r.getMessage()
        for r in records
        if r.exc_info or r.levelno >= logging.ERROR or "Traceback" in r.getMessage()
    ]
