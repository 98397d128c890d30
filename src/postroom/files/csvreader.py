"""Reading a recipient CSV from a byte stream, one checked row at a time, in flat memory."""

from __future__ import annotations

import csv
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from postroom.errors import FileRejected
from postroom.files.addresses import Address, check_address
from postroom.files.decoding import (
    SIGNATURE_BYTES,
    TextDecoder,
    lines_of,
    nul_error,
    reject_binary,
    reject_control_heavy,
)
from postroom.files.headers import find_email_column, normalise_headers

if TYPE_CHECKING:
    from _csv import Reader

CHUNK_BYTES = 1024 * 1024
DELIMITER_CANDIDATES = (",", ";", "\t", "|")


@dataclass(frozen=True, slots=True)
class CsvLimits:
    """What a recipient file may hold before it is rejected as a whole."""

    max_columns: int = 1000
    max_field_bytes: int = 64 * 1024  # UTF-8 bytes of one cell
    max_file_bytes: int = 2 * 1024**3
    # A physical line with no line end in sight is buffered; this bounds that buffer.
    max_line_chars: int = 16 * 1024 * 1024


# Named tuples rather than dataclasses: one is made per row of files of millions of rows,
# and a tuple is several times cheaper to make than a frozen dataclass.
class Recipient(NamedTuple):
    """A valid row. ``row`` is the spreadsheet row number (the header is row 1)."""

    row: int
    email: str  # normalised address
    key: str  # for finding duplicates
    fields: dict[str, str]  # every column by normalised name; the email cell trimmed


class ValidRow(NamedTuple):
    """A valid row as :meth:`RecipientFile.checked_rows` gives it: ``cells`` in the order of
    ``columns``, the email cell trimmed (a Recipient without the dict of fields)."""

    row: int
    email: str
    key: str
    cells: list[str]


class RowProblem(NamedTuple):
    """An invalid row: its number, the raw email cell, a reason code and a sentence."""

    row: int
    email: str
    reason: str  # invalid_email | missing_email | multiple_addresses | too_many_fields
    detail: str


# csv.field_size_limit is process-wide: only ever raise it, under a lock, and enforce each
# file's own limit here so that readers with different limits cannot undo each other.
_FIELD_LIMIT_LOCK = threading.Lock()


class RecipientFile:
    """One recipient CSV, read once, front to back, without holding more than a chunk of it.

    ``open()`` reads the header and sets ``columns``, ``email_column``, ``delimiter`` and
    ``encoding``; ``rows()`` then yields a Recipient or a RowProblem for every non-blank
    record. Both raise FileRejected, whose ``code`` names the rule, when the file cannot be
    used at all; ``warnings`` collects what the user should know about a file that can.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        delimiter: str | None = None,
        email_column: str | None = None,
        limits: CsvLimits = CsvLimits(),  # frozen, so one shared default is safe
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        if chunk_bytes < 1:
            raise ValueError("chunk_bytes must be at least 1")
        self._stream = stream
        self._requested_delimiter = delimiter
        self._requested_email_column = email_column
        self.limits = limits
        self._chunk_bytes = chunk_bytes
        self.columns: list[str] = []
        self.email_column = ""
        self.delimiter = ""
        self.encoding = ""
        self.warnings: list[str] = []
        self.bytes_read = 0
        self._lines_split = 0  # physical lines cut from the text so far
        self._lines_skipped = 0  # blank lines before the header, which csv never sees
        self._reader: Reader | None = None
        self._is_rows_started = False

    def open(self) -> None:
        """Read the header: encoding, delimiter, column names and the email column."""
        if self._reader is not None:
            return
        requested = self._checked_delimiter()
        lines = self._physical_lines()
        first = self._first_line(lines)
        self.delimiter = requested or detect_delimiter(first)
        _raise_field_size_limit(self.limits.max_field_bytes)
        reader = csv.reader(chain((first,), lines), delimiter=self.delimiter, strict=True)
        self.columns, header_warnings = normalise_headers(self._header(reader))
        self.warnings.extend(header_warnings)
        self.email_column = find_email_column(self.columns, self._requested_email_column)
        self._reader = reader

    def rows(self) -> Iterator[Recipient | RowProblem]:
        """Every data record in file order, checked; blank ones are skipped but keep a row number.

        Raises FileRejected part-way for whole-file problems, and ``no_recipients`` at the end
        when the file held no data record at all. A file's rows can be read only once.
        """
        self.open()
        columns = self.columns
        for item in self.checked_rows():
            if isinstance(item, ValidRow):
                row, email, key, cells = item
                yield Recipient(row, email, key, dict(zip(columns, cells, strict=True)))
            else:
                yield item

    def checked_rows(self) -> Iterator[ValidRow | RowProblem]:
        """What :meth:`rows` gives, with a valid row's cells as a list in column order."""
        reader = self._start_rows()
        width, email_index = len(self.columns), self.columns.index(self.email_column)
        quick_field_chars = self.limits.max_field_bytes // 4  # no UTF-8 character is longer
        records, done_line = 0, reader.line_num
        try:
            for row, record in enumerate(reader, start=2):
                done_line = reader.line_num
                if len(record) != width:
                    fitted = self._fitted(row, record, width, email_index)
                    if fitted is None:
                        continue
                    if isinstance(fitted, RowProblem):
                        records += 1
                        yield fitted
                        continue
                    record = fitted
                if max(map(len, record)) > quick_field_chars:
                    self._check_field_sizes(record, row, done_line)
                raw = record[email_index]
                found = check_address(raw)
                if isinstance(found, Address):
                    record[email_index] = raw.strip()  # csv made the list for this row alone
                    yield ValidRow(row, found.email, found.key, record)
                elif found.reason == "missing_email" and not "".join(record).strip():
                    continue
                else:
                    yield RowProblem(row, raw, found.reason, found.detail)
                records += 1
        except csv.Error as error:
            raise self._parse_error(error, done_line + 1, reader.line_num) from error
        if records == 0:
            raise FileRejected("The file has a header but no recipients.", code="no_recipients")

    def _start_rows(self) -> Reader:
        self.open()
        if self._is_rows_started:
            raise RuntimeError("the rows of a RecipientFile can be read only once")
        self._is_rows_started = True
        assert self._reader is not None
        return self._reader

    def _fitted(
        self, row: int, record: list[str], width: int, email_index: int
    ) -> list[str] | RowProblem | None:
        """The record at the header's width; None when blank; a problem when it has too much."""
        if len(record) < width:
            return record + [""] * (width - len(record)) if record else None
        if not "".join(record[width:]).strip():
            # Empty cells past the last column (a trailing delimiter, as some exporters write
            # on every row) lose nothing, so they are not worth failing the row for.
            return record[:width]
        email = record[email_index]
        detail = f"The row has {len(record)} fields but the header has {width}."
        return RowProblem(row, email, "too_many_fields", detail)

    def _check_field_sizes(self, record: list[str], row: int, line: int) -> None:
        """Raise field_too_large for a cell over the limit; ``line`` is where the record ends."""
        limit = self.limits.max_field_bytes
        for position, value in enumerate(record, start=1):
            if len(value) * 4 > limit and len(value.encode("utf-8", "surrogatepass")) > limit:
                line += self._lines_skipped
                raise FileRejected(
                    f"A field in row {row} (column {position}, line {line}) is longer than "
                    f"the limit of {limit} bytes.",
                    code="field_too_large",
                    details={"row": row, "column": position, "line": line, "limit": limit},
                )

    def _header(self, reader: Reader) -> list[str]:
        try:
            header = next(reader)
        except csv.Error as error:
            raise self._parse_error(error, 1, reader.line_num) from error
        if len(header) > self.limits.max_columns:
            raise FileRejected(
                f"The header has {len(header)} columns; at most {self.limits.max_columns} "
                "are allowed.",
                code="too_many_columns",
                details={"columns": len(header), "limit": self.limits.max_columns},
            )
        self._check_field_sizes(header, 1, reader.line_num)
        return header

    def _first_line(self, lines: Iterator[str]) -> str:
        """The first line with something on it; blank lines and byte-order marks before it go."""
        for line in lines:
            if line.replace("\ufeff", "").strip():
                return line.lstrip("\ufeff")
            self._lines_skipped += 1
        raise FileRejected("The file is empty.", code="empty_file")

    def _checked_delimiter(self) -> str | None:
        delimiter = self._requested_delimiter
        if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n\x00'):
            raise FileRejected(
                f"The delimiter must be one character other than a quote or a line end, "
                f"not {delimiter!r}.",
                code="invalid_delimiter",
                details={"delimiter": delimiter},
            )
        return delimiter

    def _parse_error(self, error: csv.Error, start: int, end: int) -> FileRejected:
        """What a csv.Error means for the user, for the record from line ``start`` to ``end``."""
        start, end = start + self._lines_skipped, end + self._lines_skipped
        problem, limit = str(error), self.limits.max_field_bytes
        is_over_limit = problem.startswith("field larger than field limit")
        if problem == "unexpected end of data":
            message = (
                f"The record starting on line {start} opens a quoted field that is never "
                "closed, so the rest of the file would be read as one field."
            )
            return FileRejected(message, code="malformed_csv", details={"line": start})
        if is_over_limit and end > start:
            # A field running on over many lines is far more likely a missing closing quote
            # than a real cell of that size.
            message = (
                f"The record starting on line {start} has a quoted field still open at line "
                f"{end}, past the limit of {limit} bytes; is a closing quote missing?"
            )
            details = {"line": start, "end_line": end, "limit": limit}
            return FileRejected(message, code="malformed_csv", details=details)
        if is_over_limit:
            message = f"A field on line {start} is longer than the limit of {limit} bytes."
            details = {"line": start, "limit": limit}
            return FileRejected(message, code="field_too_large", details=details)
        where = f"line {start}" if start >= end else f"the record from line {start} to {end}"
        return FileRejected(
            f"The file is not well-formed CSV at {where}: {problem}.",
            code="malformed_csv",
            details={"line": start, "end_line": max(start, end), "problem": problem},
        )

    def _physical_lines(self) -> Iterator[str]:
        """The text cut only at real line ends, which is what csv needs to see each string end."""
        carry = ""
        for text in self._text_chunks():
            lines = lines_of(carry + text)
            # The last line may go on in the next chunk, and a final "\r" may be the first
            # half of a "\r\n" pair, which csv must be given in one string.
            carry = "" if lines[-1].endswith("\n") else lines.pop()
            if len(carry) > self.limits.max_line_chars:
                line = self._lines_split + len(lines) + 1
                raise FileRejected(
                    f"Line {line} is longer than {self.limits.max_line_chars} characters.",
                    code="line_too_long",
                    details={"line": line, "limit": self.limits.max_line_chars},
                )
            self._lines_split += len(lines)
            yield from lines
        if carry:
            self._lines_split += 1
            yield carry

    def _text_chunks(self) -> Iterator[str]:
        """Decoded text, a chunk at a time, with the checks that tell a CSV from other files."""
        head = self._read_head()
        reject_binary(head)
        decoder = TextDecoder(head)
        self.encoding = decoder.encoding
        data, is_first = head[decoder.bom_bytes :], True
        while True:
            text = decoder.decode(data, final=not data)
            if decoder.encoding != self.encoding and decoder.fallback_warning:
                self.encoding = decoder.encoding
                self.warnings.append(decoder.fallback_warning)
            if "\x00" in text:
                raise nul_error(self._lines_split + 1 + text.count("\n", 0, text.index("\x00")))
            if is_first:
                reject_control_heavy(text)
                is_first = False
            if text:
                yield text
            if not data:
                return
            data = self._read()

    def _read_head(self) -> bytes:
        """The first chunk, made long enough to hold any byte-order mark or file signature."""
        head = self._read()
        while head and len(head) < SIGNATURE_BYTES:
            more = self._read()
            if not more:
                break
            head += more
        return head

    def _read(self) -> bytes:
        data = self._stream.read(self._chunk_bytes)
        self.bytes_read += len(data)
        if self.bytes_read > self.limits.max_file_bytes:
            raise FileRejected(
                f"The file is larger than the limit of {self.limits.max_file_bytes} bytes.",
                code="file_too_large",
                details={"limit": self.limits.max_file_bytes},
            )
        return data


def detect_delimiter(line: str) -> str:
    """The delimiter of a header line: the most frequent of DELIMITER_CANDIDATES outside quotes.

    A tie, or no candidate at all, gives ",".
    """
    counts = {candidate: _fields_in(line, candidate) - 1 for candidate in DELIMITER_CANDIDATES}
    most = max(counts.values())
    winners = [candidate for candidate, count in counts.items() if count == most]
    return winners[0] if most > 0 and len(winners) == 1 else ","


def _fields_in(line: str, delimiter: str) -> int:
    # Parsing with csv itself counts only delimiters outside quotes, exactly as the reader will.
    try:
        return len(next(csv.reader([line], delimiter=delimiter), []))
    except csv.Error:
        return 0


def _raise_field_size_limit(limit: int) -> None:
    with _FIELD_LIMIT_LOCK:
        if csv.field_size_limit() < limit:
            csv.field_size_limit(limit)
