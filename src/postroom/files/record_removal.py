"""Rewrites a recipient file without the records that hold one address: each such record
becomes a blank line, which the reader skips while keeping the row numbers of the others
(so row reports and message rows still point at the right rows)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from postroom.blobs import BlobStore
from postroom.files.decoding import SIGNATURE_BYTES, TextDecoder, lines_of

_CHUNK_BYTES = 1024 * 1024
# An address inside a cell: not preceded by what could be more of its local part, nor
# followed by more of its domain, so that erasing ann@example.com leaves joann@example.com.
_BEFORE = r"(?<![\w.!#$%&'*+/=?^`{|}~-])"
_AFTER = r"(?![\w-])(?!\.\w)"


def address_pattern(spellings: Iterable[str]) -> re.Pattern[str]:
    """A case-insensitive pattern for any spelling of one address (Unicode, ASCII, as typed)."""
    alternatives = sorted({s for s in spellings if s}, key=len, reverse=True)
    return re.compile(
        _BEFORE + "(?:" + "|".join(map(re.escape, alternatives)) + ")" + _AFTER, re.IGNORECASE
    )


def erase_from_blob(
    blobs: BlobStore, key: str, new_key: str, pattern: re.Pattern[str], max_bytes: int
) -> bool:
    """Write the blob under ``key`` to ``new_key`` without the records ``pattern`` finds,
    through the store's own reader and writer (whatever it does at rest, such as encryption,
    it does here too; a committed key is never overwritten, hence the new one). Returns
    False, writing nothing, when no record holds the address."""
    with blobs.open(key) as stream:
        if not any(pattern.search(record) for record in _records(stream)):
            return False
    writer = blobs.writer(new_key, max_bytes=max_bytes)
    try:
        with blobs.open(key) as stream:
            for chunk in _rewritten(stream, pattern):
                writer.write(chunk)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return True


def _rewritten(stream: BinaryIO, pattern: re.Pattern[str]) -> Iterator[bytes]:
    """The file as UTF-8 (with a byte-order mark if it had one), erased records blanked; the
    first record, the header, is kept as it is."""
    pending: list[str] = []
    size = 0
    for number, record in enumerate(_records(stream, keep_bom=True)):
        if number > 0 and pattern.search(record):
            record = _line_end(record)
        pending.append(record)
        size += len(record)
        if size >= _CHUNK_BYTES:
            yield "".join(pending).encode("utf-8")
            pending, size = [], 0
    yield "".join(pending).encode("utf-8")


def _records(stream: BinaryIO, *, keep_bom: bool = False) -> Iterator[str]:
    """The file's CSV records in order (a quoted cell may hold line ends), each with its line
    end; blank lines before the header count as records of their own."""
    open_record: list[str] = []
    is_quoted = False
    for line in _lines(stream, keep_bom):
        open_record.append(line)
        is_quoted ^= line.count('"') % 2 == 1
        if not is_quoted:
            yield "".join(open_record)
            open_record = []
    if open_record:
        yield "".join(open_record)


def _lines(stream: BinaryIO, keep_bom: bool) -> Iterator[str]:
    head = stream.read(max(_CHUNK_BYTES, SIGNATURE_BYTES))
    decoder = TextDecoder(head)
    data = head[decoder.bom_bytes :]
    carry = "\ufeff" if keep_bom and decoder.bom_bytes else ""
    while True:
        text = decoder.decode(data, final=not data)
        if text:
            lines = lines_of(carry + text)
            carry = "" if lines[-1].endswith("\n") else lines.pop()
            yield from lines
        if not data:
            break
        data = stream.read(_CHUNK_BYTES)
    if carry:
        yield carry


def _line_end(record: str) -> str:
    stripped = record.rstrip("\r\n")
    return record[len(stripped) :]
