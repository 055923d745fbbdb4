"""A big RSS feed, generated: the 10 MB, 50,000-entry feed that once blocked the daemon."""

from __future__ import annotations

from collections.abc import Iterable


def big_rss(
    count: int,
    *,
    edited: Iterable[int] = (),
    prefix: str = "http://news.example",
    built: str = "Mon, 01 Dec 2026 10:00:00 GMT",
) -> bytes:
    """``count`` RSS items (about 190 bytes each: 50,000 make 9.5 MB); items in ``edited`` get
    a different description, as if the publisher revised them; ``built`` is the channel's
    lastBuildDate, which a publisher's generator changes on every run."""
    revised = set(edited)
    items = "".join(
        f"<item><title>Story {i}</title><link>{prefix}/story/{i}</link>"
        f"<guid>urn:story:{i}</guid><description>{_summary(i, i in revised)}</description></item>"
        for i in range(count)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Big wire</title><lastBuildDate>{built}</lastBuildDate>{items}</channel></rss>"
    ).encode()


def _summary(i: int, revised: bool) -> str:
    return f"{'Revised' if revised else 'First'} report on item {i} from the wire desk today."
