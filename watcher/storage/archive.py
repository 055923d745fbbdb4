"""The archive of originals: every page response that made a version, as WARC 1.1.

``archive: {warc: DIR}`` turns it on. A check that makes a new version first writes the
page's ``response`` record (the HTTP response as received) and its ``request`` record here,
each its own gzip member, and fsyncs them; only then is the version committed, pointing at
the file, offset and length. A crash in between leaves an orphan record no version names,
never a version naming a missing record. A failed page (an error status, a page that does
not extract) is archived too, flagged with ``Watcher-Outcome: failed`` and the reason.

What "as received" means here: the status line, the header names and values byte for byte
in their order, and the body as the server encoded it (the gzip bytes of a gzip response).
The HTTP parser has already taken away the framing: whitespace around header values, and
for a chunked response the chunk sizes; such a record says ``Watcher-Transfer-Encoding:
chunked`` in its WARC headers and its HTTP head has no ``Transfer-Encoding``, so the block
is a well-formed message whose body runs to the end of the record.

Files are named ``watcher-<UTC start>-<pid>-<n>.warc.gz``: each process starts a new one
(a crash can leave only the end of a file half-written), and a new one starts when a file
reaches ``max_file_size`` or the UTC day changes.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from watcher import __version__
from watcher.errors import StoreError
from watcher.records import RawExchange, VersionRecord, WarcRef

__all__ = ["WarcArchive"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"^watcher-\d{14}-\d+-\d{5}\.warc\.gz$")


class _ExactHead(StatusAndHeaders):  # type: ignore[misc]
    """An HTTP head written as given, not re-serialised (warcio would percent-encode
    non-ASCII header values and rebuild each line)."""

    def __init__(self, head: bytes, statusline: str, headers: list[tuple[str, str]]) -> None:
        super().__init__(statusline, headers, protocol="")
        self.exact = head

    def compute_headers_buffer(self, header_filter: Any = None) -> None:
        self.headers_buff = self.exact


class WarcArchive:
    """The WARC files of one archive folder: written by the one writer, read by anyone."""

    def __init__(self, directory: Path, max_file_size: int = 1_000_000_000) -> None:
        self.directory = directory
        self.max_file_size = max_file_size
        self._current: Path | None = None
        self._day: str | None = None
        self._serial = 0

    # ------------------------------------------------------------------ writing

    def write(
        self, raw: RawExchange, fetched_at: datetime, *, failed: str | None = None
    ) -> WarcRef:
        """Append the response and request records and fsync them; where they are."""
        try:
            path = self._file_for(fetched_at)
            with path.open("ab") as stream:
                offset = stream.tell()
                writer = WARCWriter(stream, gzip=True, warc_version="WARC/1.1")
                response = _response_record(writer, raw, fetched_at, failed)
                writer.write_record(response)
                request = _request_record(writer, raw, fetched_at, response)
                writer.write_record(request)
                stream.flush()
                os.fsync(stream.fileno())
                length = stream.tell() - offset
        except OSError as exc:
            raise StoreError(f"WARC archive {self.directory}: {exc.strerror or exc}") from None
        return WarcRef(path.name, offset, length)

    def _file_for(self, moment: datetime) -> Path:
        day = moment.astimezone(UTC).strftime("%Y%m%d")
        current = self._current
        if current is not None and day == self._day and _size(current) < self.max_file_size:
            return current
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")
        while True:  # another archive object of this process may have started one this second
            self._serial += 1
            path = self.directory / f"watcher-{stamp}-{os.getpid()}-{self._serial:05d}.warc.gz"
            if not path.exists():
                break
        with path.open("xb") as stream:
            writer = WARCWriter(stream, gzip=True, warc_version="WARC/1.1")
            info = {"software": f"watcher/{__version__}", "format": "WARC File Format 1.1"}
            writer.write_record(writer.create_warcinfo_record(path.name, info))
            stream.flush()
            os.fsync(stream.fileno())
        _fsync_directory(self.directory)  # the new name survives a power cut too
        self._current, self._day = path, day
        return path

    # ------------------------------------------------------------------ reading

    def read_response(self, ref: WarcRef) -> tuple[StatusAndHeaders, bytes]:
        """The HTTP head and the body as received (still content-encoded) of a record."""
        with self._open(ref) as stream:
            record = next(iter(ArchiveIterator(stream)))
            return record.http_headers, record.raw_stream.read()

    def read_original(self, version: VersionRecord) -> bytes:
        """The page body a version was made from, as the server sent it but decoded (gzip
        undone): the HTML a browser would have rendered. StoreError if it has none."""
        ref = version.warc
        if ref is None:
            raise StoreError(f"version {version.number} has no archived original")
        with self._open(ref) as stream:
            record = next(iter(ArchiveIterator(stream)))
            data: bytes = record.content_stream().read()
            return data

    def copy_records(self, refs: Iterable[WarcRef], out: IO[bytes]) -> int:
        """Copy the records (their gzip members byte for byte) into ``out``, after a
        warcinfo record; how many exchanges were copied."""
        writer = WARCWriter(out, gzip=True, warc_version="WARC/1.1")
        info = {"software": f"watcher/{__version__}", "format": "WARC File Format 1.1"}
        writer.write_record(writer.create_warcinfo_record("export.warc.gz", info))
        copied = 0
        for ref in refs:
            with self._open(ref) as stream:
                out.write(stream.read(ref.length))
            copied += 1
        return copied

    def _open(self, ref: WarcRef) -> IO[bytes]:
        if not _NAME.match(ref.file):
            raise StoreError(f"not a WARC file of this archive: {ref.file!r}")
        path = self.directory / ref.file
        try:
            stream = path.open("rb")
        except OSError as exc:
            raise StoreError(f"WARC archive: {path}: {exc.strerror or exc}") from None
        stream.seek(ref.offset)
        return stream

    # ------------------------------------------------------------------ retention

    def files(self) -> Iterator[Path]:
        if self.directory.is_dir():
            yield from (p for p in sorted(self.directory.iterdir()) if _NAME.match(p.name))

    def delete_unreferenced(self, referenced: set[str], older_than: datetime) -> list[str]:
        """Delete the files no version names any more, last written before ``older_than``
        (so the failed and orphan records of recent days stay), never the one being written."""
        deleted = []
        for path in self.files():
            if path.name in referenced or path == self._current:
                continue
            if datetime.fromtimestamp(path.stat().st_mtime, UTC) >= older_than:
                continue
            path.unlink(missing_ok=True)
            deleted.append(path.name)
        return deleted


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _latin1(pairs: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in pairs]


def _response_record(
    writer: WARCWriter, raw: RawExchange, fetched_at: datetime, failed: str | None
) -> Any:
    headers = list(raw.response_headers)
    dechunked = [v for n, v in headers if n.lower() == b"transfer-encoding"]
    headers = [(n, v) for n, v in headers if n.lower() != b"transfer-encoding"]
    status_line = b"%s %d %s" % (raw.http_version.encode(), raw.status, raw.reason)
    head = status_line + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in headers) + b"\r\n"
    statusline = f"{raw.status} {raw.reason.decode('latin-1')}"
    warc_headers = {"WARC-Date": _warc_date(fetched_at)}
    if raw.remote_ip:
        warc_headers["WARC-IP-Address"] = raw.remote_ip
    if dechunked:
        warc_headers["Watcher-Transfer-Encoding"] = b", ".join(dechunked).decode("latin-1")
    if failed is not None:
        warc_headers["Watcher-Outcome"] = "failed"
        warc_headers["Watcher-Error"] = " ".join(failed.split())[:500]
    return writer.create_warc_record(
        raw.url,
        "response",
        payload=io.BytesIO(raw.body),
        length=len(raw.body),
        warc_headers_dict=warc_headers,
        http_headers=_ExactHead(head, statusline, _latin1(headers)),
    )


def _request_record(
    writer: WARCWriter, raw: RawExchange, fetched_at: datetime, response: Any
) -> Any:
    head = raw.request_line + b"\r\n"
    head += b"".join(n + b": " + v + b"\r\n" for n, v in raw.request_headers) + b"\r\n"
    statusline = raw.request_line.decode("latin-1")
    warc_headers = {
        "WARC-Date": _warc_date(fetched_at),
        "WARC-Concurrent-To": response.rec_headers.get_header("WARC-Record-ID"),
    }
    return writer.create_warc_record(
        raw.url,
        "request",
        payload=io.BytesIO(b""),
        length=0,
        warc_headers_dict=warc_headers,
        http_headers=_ExactHead(head, statusline, _latin1(raw.request_headers)),
    )


def _warc_date(moment: datetime) -> str:
    """WARC 1.1 allows sub-second precision: two fetches in one second stay ordered."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
