"""Content-Encoding undone under a size cap: a body is decoded incrementally, so the cap
applies to *decoded* bytes and a gzip bomb is stopped after at most the cap + one chunk."""

from __future__ import annotations

import zlib

from watcher.errors import FetchError


def decode_body(url: str, content_encoding: str, data: bytes, max_bytes: int) -> bytes:
    """``data`` decoded as ``content_encoding`` with the fetch's size cap: for bodies that
    are compressed files rather than compressed transfers (a ``sitemap.xml.gz``)."""
    decoder = BodyDecoder(url, content_encoding, max_bytes)
    return decoder.feed(data) + decoder.finish()


class BodyDecoder:
    """Incremental Content-Encoding decoder that refuses to produce more than ``limit`` bytes.

    zlib's ``max_length`` bounds each call's output, so an enormous expansion of one small
    chunk is detected after producing ``limit + 1`` bytes, never materialised in full.
    """

    def __init__(self, url: str, content_encoding: str, limit: int) -> None:
        self.url = url
        self.limit = limit
        self.produced = 0
        codings = [c.strip().lower() for c in content_encoding.split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise FetchError(url, f"unsupported Content-Encoding {content_encoding!r}")
        self.coding = codings[0] if codings else None
        self.identity = self.coding is None
        self._zlib: zlib._Decompress | None = None
        self._pending = b""  # deflate: bytes held until the header can be sniffed

    def feed(self, raw: bytes) -> bytes:
        if self.identity:
            return self._count(raw)
        try:
            return self._inflate(raw)
        except zlib.error as exc:
            raise FetchError(self.url, f"malformed {self.coding} body: {exc}") from None

    def finish(self) -> bytes:
        if self.identity:
            return b""
        if self._pending:  # a deflate body shorter than two bytes
            raise FetchError(self.url, f"malformed {self.coding} body: too short")
        if self._zlib is None or not self._zlib.eof:
            # A cut-off body would be stored as a "shortened article": refuse it instead.
            raise FetchError(self.url, f"truncated {self.coding} body")
        return b""

    def too_big(self) -> FetchError:
        return FetchError(self.url, f"body exceeds {self.limit} bytes")

    def _count(self, data: bytes) -> bytes:
        self.produced += len(data)
        if self.produced > self.limit:
            raise self.too_big()
        return data

    def _inflate(self, raw: bytes) -> bytes:
        if self._zlib is None:
            raw = self._pending + raw
            if self.coding == "deflate" and len(raw) < 2:
                self._pending = raw
                return b""
            self._pending = b""
            self._zlib = zlib.decompressobj(self._wbits(raw))
        out = []
        while raw:
            if self._zlib.eof:
                raw = self._next_member(raw)
                if not raw:
                    break
            budget = self.limit - self.produced
            data = self._zlib.decompress(raw, budget + 1)
            out.append(self._count(data))
            # Under the cap zlib consumes all input unless the stream ended inside it.
            raw = self._zlib.unused_data if self._zlib.eof else self._zlib.unconsumed_tail
        return b"".join(out)

    def _next_member(self, rest: bytes) -> bytes:
        """Concatenated gzip members form one body; other trailing bytes are ignored."""
        if self.coding != "deflate" and rest.startswith(b"\x1f\x8b"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
            return rest
        return b""

    def _wbits(self, head: bytes) -> int:
        if self.coding != "deflate":
            return 16 + zlib.MAX_WBITS  # gzip wrapper
        # "deflate" is meant to be zlib-wrapped (RFC 9110 8.4.1.2) but some servers send raw
        # deflate; a zlib header has CM=8 and a 16-bit value divisible by 31.
        wrapped = head[0] & 0x0F == 8 and int.from_bytes(head[:2], "big") % 31 == 0
        return zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS
