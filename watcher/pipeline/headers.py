"""Response headers -> the values watcher keeps: the one place a header is trusted.

Every header a server sends is untrusted input, and some of what watcher keeps from them is
sent back later: a validator (ETag, Last-Modified) is stored and goes out again as
If-None-Match / If-Modified-Since. httpx decodes a non-ASCII header on the way in but cannot
encode one on the way out, so one stored ``ETag: "café"`` used to make every later request of
that feed or article fail before it was sent, forever. Hence the rule of this module: keep
only what is valid by the HTTP grammar (RFC 9110), in a form that can always be sent again;
drop the rest with one warning naming the URL and the header. The same checks apply to the
validators a request is about to send, because rows written by older versions may hold bad
ones: those are left out, so the request goes out unconditional and its answer replaces them.

Retry-After and the charset are dropped when unreadable (the server's wish is a hint), a bad
Location is a :class:`~watcher.errors.FetchError` (there is nowhere else to go).
"""

from __future__ import annotations

import email.utils
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from watcher.errors import FetchError

__all__ = [
    "MAX_RETRY_AFTER",
    "Validators",
    "kept_headers",
    "redirect_target",
    "request_validators",
    "retry_after",
]

log = logging.getLogger(__name__)

# Retry-After is honoured up to this: a server asking for a month is not taken literally,
# and no value, however long its digits, can overflow a timedelta or a datetime.
MAX_RETRY_AFTER = timedelta(days=1)
# A validator is stored on every feed and article row and sent with every re-check.
MAX_VALIDATOR_CHARS = 512
# How much of a refused value a log line shows.
SHOWN_CHARS = 80

# RFC 9110 8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E (the
# obs-text the grammar also allows is refused: it cannot be sent back reliably).
_ENTITY_TAG = re.compile(r'(?:W/)?"[\x21\x23-\x7e]*"')
_VISIBLE_ASCII = re.compile(r"[\x20-\x7e]*")  # what a date or a media type may contain
_DELAY_SECONDS = re.compile(r"[0-9]+")  # not str.isdigit(): "²" is a digit to Python
_SPACE_OR_CONTROL = re.compile(rb"[\x00-\x20\x7f]")
_OWS = " \t"  # optional whitespace around a field value (RFC 9110 5.6.3)


@dataclass(frozen=True)
class Validators:
    """The cache validators of a request or a response; None where absent or invalid."""

    etag: str | None = None
    last_modified: str | None = None

    def __bool__(self) -> bool:
        return self.etag is not None or self.last_modified is not None


def request_validators(url: str, etag: str | None, last_modified: str | None) -> Validators:
    """The stored validators that may be sent to ``url``; a bad one is left out (and logged),
    so the request goes out unconditional and its answer brings a valid replacement."""
    kept = Validators(_entity_tag(etag), _http_date(last_modified))
    if etag and kept.etag is None:
        _refused(url, "stored ETag", etag, "not a valid entity-tag; not sent")
    if last_modified and kept.last_modified is None:
        _refused(url, "stored Last-Modified", last_modified, "not an HTTP-date; not sent")
    return kept


def kept_headers(url: str, headers: httpx.Headers) -> dict[str, str]:
    """The response headers as watcher keeps them: names lower-cased, repeats comma-joined,
    and the ones later stages act on (ETag, Last-Modified, Content-Type) validated: an
    invalid one is left out."""
    kept: dict[str, str] = {}
    for name, value in headers.multi_items():
        key = name.lower()
        kept[key] = f"{kept[key]}, {value}" if key in kept else value
    checked: dict[str, str | None] = {
        "etag": _response_etag(url, headers.get_list("etag")),
        "last-modified": _response_date(url, headers.get_list("last-modified")),
        "content-type": _content_type(url, headers.get_list("content-type")),
    }
    for key, valid in checked.items():
        kept.pop(key, None)
        if valid is not None:
            kept[key] = valid
    return kept


def retry_after(url: str, headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """Retry-After in seconds (RFC 9110 10.2.3: delay-seconds or an HTTP-date), at most
    MAX_RETRY_AFTER, never negative; None when absent or unreadable."""
    value = _single(url, "Retry-After", headers.get_list("retry-after"))
    if value is None:
        return None
    limit = MAX_RETRY_AFTER.total_seconds()
    if _DELAY_SECONDS.fullmatch(value):
        # int() of thousands of digits raises; anything this long is over the limit anyway.
        return limit if len(value) > 9 else min(float(value), limit)
    when = _parse_http_date(value)
    if when is None:
        _refused(url, "Retry-After", value, "neither delay-seconds nor an HTTP-date; ignored")
        return None
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(0.0, seconds), limit)


def redirect_target(url: str, response: httpx.Response) -> str:
    """The absolute http(s) URL a redirect points to; a FetchError naming what is wrong
    with its Location otherwise. Non-ASCII bytes are percent-encoded, as browsers do."""
    status = response.status_code
    raw = response.headers.raw
    values = {value.strip(b" \t") for key, value in raw if key.lower() == b"location"}
    values.discard(b"")
    if not values:
        raise FetchError(url, f"redirect {status} without a Location header")
    if len(values) > 1:
        raise FetchError(url, f"redirect {status} with {len(values)} different Location headers")
    (location,) = values
    shown = _shown(location.decode("latin-1"))
    if _SPACE_OR_CONTROL.search(location):
        raise FetchError(url, f"redirect {status} to {shown}: whitespace or control characters")
    escaped = "".join(chr(byte) if byte < 0x80 else f"%{byte:02X}" for byte in location)
    try:
        target = response.url.join(escaped)
    except (httpx.InvalidURL, ValueError) as exc:
        raise FetchError(url, f"redirect {status} to {shown}: not a URL ({exc})") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise FetchError(url, f"redirect {status} to unsupported URL {_shown(str(target))}")
    return str(target)


# ----------------------------------------------------------------------------- helpers


def _response_etag(url: str, values: Sequence[str]) -> str | None:
    value = _single(url, "ETag", values)
    if value is None:
        return None
    etag = _entity_tag(value)
    if etag is None:
        _refused(url, "ETag", value, "not a valid entity-tag; ignored")
    return etag


def _response_date(url: str, values: Sequence[str]) -> str | None:
    value = _single(url, "Last-Modified", values)
    if value is None:
        return None
    date = _http_date(value)
    if date is None:
        _refused(url, "Last-Modified", value, "not an HTTP-date; ignored")
    return date


def _content_type(url: str, values: Sequence[str]) -> str | None:
    """The last Content-Type (what browsers use), without a charset no codec can decode."""
    value = values[-1].strip(_OWS) if values else ""
    if not value:
        return None
    if not _VISIBLE_ASCII.fullmatch(value):
        _refused(url, "Content-Type", value, "not visible ASCII; ignored")
        return None
    media_type, *parameters = (part.strip(_OWS) for part in value.split(";"))
    kept = [media_type]
    for parameter in parameters:
        name, _, label = parameter.partition("=")
        if name.strip(_OWS).lower() == "charset" and not _decodable(label.strip(_OWS + "\"'")):
            _refused(url, "Content-Type", value, "unknown charset; the charset is ignored")
            continue
        kept.append(parameter)
    return "; ".join(kept)


def _decodable(label: str) -> bool:
    """Whether Python can decode text in this charset (rot13 or zlib are codecs, not text)."""
    try:
        b"a".decode(label, "replace")  # b"" would not do: an empty input skips the codec
    except (LookupError, UnicodeError, ValueError):
        return False
    return True


def _single(url: str, header: str, values: Sequence[str]) -> str | None:
    """The one value of a header that must appear once; repeats that differ mean nothing."""
    distinct = {value.strip(_OWS) for value in values} - {""}
    if len(distinct) > 1:
        _refused(url, header, ", ".join(sorted(distinct)), "sent with different values; ignored")
        return None
    return distinct.pop() if distinct else None


def _entity_tag(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip(_OWS)
    valid = len(value) <= MAX_VALIDATOR_CHARS and _ENTITY_TAG.fullmatch(value)
    return value if valid else None


def _http_date(value: str | None) -> str | None:
    """An HTTP-date re-formatted as IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT")."""
    when = _parse_http_date(value) if value is not None else None
    return email.utils.format_datetime(when, usegmt=True) if when is not None else None


def _parse_http_date(value: str) -> datetime | None:
    """A date in any of the forms RFC 9110 5.6.7 asks recipients to read, in UTC."""
    value = value.strip(_OWS)
    if len(value) > MAX_VALIDATOR_CHARS or not _VISIBLE_ASCII.fullmatch(value):
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
        # "-0000" parses as naive; HTTP dates are always GMT.
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _refused(url: str, header: str, value: str, why: str) -> None:
    log.warning("%s: %s header %s: %s", url, header, _shown(value), why)


def _shown(value: str) -> str:
    return repr(value[:SHOWN_CHARS]) + ("..." if len(value) > SHOWN_CHARS else "")
