"""Bytes to text: a page's charset from its HTTP header, its BOM or its ``<meta>``, with
fallbacks that never raise (a page that declares nothing and is not UTF-8 decodes as
windows-1252: stable, if possibly garbled)."""

from __future__ import annotations

import codecs
import re

# --- decoding ------------------------------------------------------------------------------

# UTF-32 first: the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS = {codecs.BOM_UTF32_LE: "utf-32", codecs.BOM_UTF32_BE: "utf-32", codecs.BOM_UTF8: "utf-8-sig"}
_BOMS |= {codecs.BOM_UTF16_LE: "utf-16", codecs.BOM_UTF16_BE: "utf-16"}
_META_CHARSET = re.compile(rb"""<meta[^>]{0,300}?charset\s*=\s*["']?\s*([\w.:-]{1,40})""", re.I)
_CHARSET_PARAM = re.compile(r"""\bcharset\s*=\s*["']?([^\s;"']+)""", re.I)
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f]")
_PREFORMATTED = re.compile(r"(<(pre|textarea)\b.*?</\2\s*>)", re.I | re.S)


# The encodings of the WHATWG Encoding Standard, by Python codec name. Browsers read any other
# label as windows-1252, and some Python codecs are no text encoding at all: a page declaring
# charset=rot13, base64, zlib or "undefined" made bytes.decode raise instead of decoding.
_WEB_CODECS = frozenset(
    codecs.lookup(name).name
    for name in (
        "utf-8", "utf-16", "utf-16-be", "utf-16-le", "cp866", "koi8-r", "koi8-u", "mac-roman",
        "mac-cyrillic", "cp874", "tis-620", "gbk", "gb2312", "gb18030", "big5", "big5hkscs",
        "euc_jp", "iso2022_jp", "shift_jis", "cp932", "euc_kr", "cp949",
        *(f"iso8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16)),
        *(f"cp125{n}" for n in range(9)),
    )
)  # fmt: skip


def _codec(label: str | None) -> str | None:
    """The codec a browser would use for a charset label; None for a label it ignores."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None
    if name in ("iso8859-1", "ascii"):
        return "cp1252"  # Latin-1 and ASCII labels mean windows-1252
    return name if name in _WEB_CODECS else None


def http_charset(content_type: str | None) -> str | None:
    match = _CHARSET_PARAM.search(content_type or "")
    return match.group(1) if match else None


def _meta_codec(data: bytes) -> str | None:
    """The <meta> charset, read as browsers do (WHATWG); None when absent or unusable."""
    match = _META_CHARSET.search(data, 0, 4096)
    name = _codec(match.group(1).decode("ascii")) if match else None
    # A <meta> readable as ASCII cannot be UTF-16: the page is in some ASCII-based charset.
    return None if name is None or name.startswith("utf-16") else name


def mostly_utf8(data: bytes) -> bool:
    """Whether bytes read as UTF-8 with at most a few invalid sequences among valid ones.

    A stray byte (a cut-off paste, a broken ad snippet) must not turn a UTF-8 page or feed
    into windows-1252 mojibake: every accented word would read as edited. Text in a legacy
    charset seldom forms valid multi-byte sequences, so four valid non-ASCII characters for
    each invalid sequence is taken for UTF-8.
    """
    text = data.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd")
    valid = len(text) - len(text.encode("ascii", errors="ignore")) - invalid
    return valid >= 4 * invalid


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Bytes -> text without ever raising: BOM, else valid UTF-8, else the declared charset
    (the HTTP ``charset``, then the page's <meta>), except that a UTF-8, Latin-1 or missing
    label is checked against the bytes: mostly UTF-8, else windows-1252."""
    for bom, codec in _BOMS.items():
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    try:
        # Valid UTF-8 with non-ASCII bytes is almost never another charset, while pages that
        # mislabel UTF-8 as Latin-1 are common; ASCII decodes the same either way.
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    declared = _codec(charset) or _meta_codec(data)
    if declared in (None, "cp1252", "utf-8"):
        # The usual mix-ups: UTF-8 labelled Latin-1, Latin-1 labelled UTF-8, no label at all.
        # The bytes decide; other declared charsets are taken at their word.
        declared = "utf-8" if mostly_utf8(data) else "cp1252"
    return data.decode(declared, errors="replace")


def fold_source_newlines(page: str) -> str:
    """Source line breaks -> spaces outside <pre>/<textarea>, as browsers render them.

    trafilatura copies them into its output, so re-indented markup would split paragraphs
    differently. str.replace costs ~1% of an extraction (a regex fold of all whitespace ~15%).
    """
    if not _PREFORMATTED.search(page):
        return page.replace("\r", " ").replace("\n", " ")
    # split() yields [outside, block, tag name, outside, ...]: fold the outside parts only.
    parts = _PREFORMATTED.split(page)
    return "".join(
        part.replace("\r", " ").replace("\n", " ") if i % 3 == 0 else part
        for i, part in enumerate(parts)
        if i % 3 != 2
    )
