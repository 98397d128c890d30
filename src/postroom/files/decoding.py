"""Turns a recipient file's bytes into text: BOMs, UTF-8/UTF-16/Windows-1252, binaries refused."""

from __future__ import annotations

import codecs
import re

from postroom.errors import FileRejected

# Signatures of the files people upload by mistake instead of a CSV.
_BINARY_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook?)"),
    (b"PK\x05\x06", "a ZIP archive (an .xlsx workbook?)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel or Office document"),
    (b"%PDF-", "a PDF document"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x7fELF", "a program"),
)
SIGNATURE_BYTES = 8
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig", "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16-be"),
)
_CONTROL_CHARS = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_SAMPLE_CHARS = 64 * 1024
_MAX_CONTROL_SHARE = 0.05
# str.splitlines() also breaks at these, but csv does not treat them as line ends, so a chunk
# holding any of them is split by the slower pattern that knows only \r\n, \r and \n.
_RARE_LINE_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_CSV_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


class TextDecoder:
    """The file's bytes to text, chunk by chunk, falling back from UTF-8 to Windows-1252."""

    def __init__(self, head: bytes) -> None:
        self.encoding, self.bom_bytes, codec = "utf-8", 0, "utf-8"
        for bom, name, bom_codec in _BOMS:
            if head.startswith(bom):
                self.encoding, self.bom_bytes, codec = name, len(bom), bom_codec
                break
        self._decoder = codecs.getincrementaldecoder(codec)("strict")
        self._decoded_bytes = self.bom_bytes
        self.fallback_warning: str | None = None

    def decode(self, data: bytes, *, final: bool) -> str:
        """The text of ``data``, the next chunk of the file past its BOM; ``final`` at the end.

        Raises FileRejected (``not_csv``) for invalid UTF-16; invalid UTF-8 instead switches
        ``encoding`` to Windows-1252 for the rest of the file and sets ``fallback_warning``.
        """
        if self.fallback_warning is not None:
            return data.decode("cp1252", "replace")
        pending = self._decoder.getstate()[0]
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as error:
            if self.encoding.startswith("utf-16"):
                raise FileRejected(
                    f"The file says it is {self.encoding.upper()} but is not: {error.reason}.",
                    code="not_csv",
                    details={"encoding": self.encoding},
                ) from error
            offset = self._decoded_bytes - len(pending) + error.start
            self.fallback_warning = (
                f"The file is not valid UTF-8 (byte {offset} is the first bad one), so it was "
                "read as Windows-1252 from there; check accented letters in the result."
            )
            self.encoding = "windows-1252"
            return (pending + data).decode("cp1252", "replace")
        self._decoded_bytes += len(data)
        return text


def reject_binary(head: bytes) -> None:
    """Raise FileRejected (``not_csv``) when ``head``, the file's first bytes, is a known binary."""
    for signature, kind in _BINARY_SIGNATURES:
        if head.startswith(signature):
            raise FileRejected(
                f"This is {kind}, not a CSV file; export the sheet as CSV and upload that.",
                code="not_csv",
                details={"looks_like": kind},
            )


def reject_control_heavy(text: str) -> None:
    """Raise FileRejected (``not_csv``) when the start of ``text`` is mostly control characters."""
    sample = text[:_CONTROL_SAMPLE_CHARS]
    controls = len(_CONTROL_CHARS.findall(sample))
    if controls > len(sample) * _MAX_CONTROL_SHARE:
        raise FileRejected(
            "The file is full of control characters, so it is not a text CSV file.",
            code="not_csv",
            details={"control_characters": controls, "sampled": len(sample)},
        )


def nul_error(line: int) -> FileRejected:
    """The rejection (``not_csv``) for a NUL character found near physical line ``line``."""
    return FileRejected(
        f"The file has a NUL byte near line {line}, so it is not a text CSV file (is it a "
        "spreadsheet, or UTF-16 text without a byte-order mark?).",
        code="not_csv",
        details={"line": line},
    )


def lines_of(text: str) -> list[str]:
    """``text`` cut after each \\r\\n, \\r or \\n, line ends kept: the only line ends csv knows."""
    # One "in" per character is a fast C scan; a regex character class is far slower.
    if not any(separator in text for separator in _RARE_LINE_BREAKS):
        return text.splitlines(keepends=True)
    return _CSV_LINE.findall(text)
