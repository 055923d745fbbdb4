"""Article URLs: the canonical form two links to one story share, and credentials in links.

An entry's identity is its guid when it has one, else its canonical URL, so a publisher
appending ``?utm_source=rss`` does not make a new article.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit, urlunsplit

# Query parameters that only tell the publisher where a click came from. Compared
# case-insensitively; any name starting with "utm_" is one as well.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid",
        "twclid", "ttclid", "li_fat_id", "igshid", "mc_cid", "mc_eid", "_ga", "_gl",
        "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "rb_clickid",
        "ref", "ref_src", "ref_url", "cmpid", "icid", "ocid", "smid", "spm", "wt_mc",
    }
)  # fmt: skip
_DEFAULT_PORTS = {"http": "80", "https": "443"}
def canonical_url(url: str, base: str | None = None) -> str:
    """The URL two links to the same article share (raises ValueError if unparseable).

    Lower-cases scheme and host, drops credentials (``user:pass@``), the default port, the
    fragment and tracking parameters; keeps the other parameters byte for byte and in order.
    Idempotent.
    """
    parts = urlsplit(urljoin(base, url) if base else url)
    scheme = parts.scheme.lower()
    netloc = _canonical_netloc(parts.netloc, scheme)
    path = parts.path or ("/" if netloc else "")
    if not netloc and path.startswith("//"):
        # "http:////x" has no host; left as is it would come back as host "x".
        path = "/" + path.lstrip("/")
    kept = [p for p in parts.query.split("&") if p and not _is_tracking(p)]
    return urlunsplit((scheme, netloc, path, "&".join(kept), ""))


def _canonical_netloc(netloc: str, scheme: str) -> str:
    # Credentials are no part of an article's identity, and the canonical URL is stored,
    # shown and logged: it never carries them.
    hostport = netloc.rpartition("@")[2]
    host, colon, port = hostport.rpartition(":")
    # "[::1]" has colons of its own: only a colon after the closing bracket starts a port.
    if not colon or "]" in port:
        host, port = hostport, ""
    if port in ("", _DEFAULT_PORTS.get(scheme)):
        # An empty port is dropped with every colon before it ("host::" is "host"), so a
        # second pass finds none left to drop.
        hostport = host.rstrip(":") if not port else host
    return hostport.lower()


def userinfo_allowed(link: str, feed_url: str) -> bool:
    """Whether ``link`` may carry the credentials it carries (or carries none): only when
    the feed's own URL, written by the user, has credentials for the same host.

    A link's ``user:pass@`` comes from the publisher's feed: kept, it would sit in the
    database and the logs, and be sent to whichever host the link names.
    """
    try:
        link_parts, feed_parts = urlsplit(link), urlsplit(feed_url)
        if link_parts.username is None and link_parts.password is None:
            return True
        same_host = (link_parts.hostname or "") == (feed_parts.hostname or "")
    except ValueError:
        return False
    return same_host and (feed_parts.username is not None or feed_parts.password is not None)


def without_userinfo(url: str) -> str:
    """``url`` with any ``user:pass@`` removed (everything else unchanged)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _is_tracking(param: str) -> bool:
    name = param.partition("=")[0].lower()
    return name.startswith("utm_") or name in TRACKING_PARAMS
