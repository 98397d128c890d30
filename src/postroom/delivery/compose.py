"""The message composer: RFC 5322 / MIME bytes for one rendered campaign message, built fast.

The standard library's ``EmailMessage`` is correct but slow (its header policy machinery runs
per message), so this module writes the few shapes Postroom sends directly: a
multipart/alternative message with a text/plain and a text/html part.

Guarantees, whatever the input:

- every line ends with CRLF and no line is longer than 998 bytes; header lines are folded to
  78 characters where the content allows it, body lines are at most 76;
- header values pass through ``sanitize_header_text``, and folding only ever inserts CRLF
  followed by a space, so no value can start a new header line or add a recipient;
- text that is not plain ASCII, or that contains ``=?`` (and so could be read as an RFC 2047
  encoded word hiding a line break), is sent as ``=?utf-8?b?...?=`` encoded words;
- the multipart boundary cannot occur in either encoded body (see ``_Boundaries``).

Addresses are passed through as given, except that a non-ASCII domain is converted to IDNA
(punycode). A non-ASCII local part stays UTF-8 in the header (RFC 6532): such a message can
only be relayed with the SMTPUTF8 extension, which the transport has to ask for.
"""

from __future__ import annotations

import binascii
import itertools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

import idna

from postroom.errors import PostroomError

_FOLDED_LINE_CHARS = 78
_MAX_LINE_BYTES = 998
_QP_LINE_CHARS = 76
_BASE64_LINE_CHARS = 76

# RFC 2047: an encoded word is at most 75 characters; "=?utf-8?b?" and "?=" take 12 of them.
_ENCODED_WORD_PREFIX = "=?utf-8?b?"
_ENCODED_WORD_CHARS = 75
_ENCODED_WORD_OVERHEAD = 12

# A display name made only of atoms separated by single spaces needs no quoting.
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_ADDRESS = re.compile(r"[^\s\"(),:;<>@\[\\\]]+@[^\s\"(),:;<>@\[\\\]]+")
_MESSAGE_ID = re.compile(r"[^\s<>@]+@[^\s<>@]+")
_FIELD_NAME = re.compile(r"[!-9;-~]+")

# Headers the composer writes itself; extra headers may not repeat them, nor add recipients.
_RESERVED_FIELD_NAMES = frozenset(
    {"from", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id", "mime-version"}
    | {"content-type", "content-transfer-encoding"}
)

_LINE_BREAK_RUNS = re.compile("[\r\n\x85\u2028\u2029]+")
_OTHER_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x84\x86-\x9f]")
_HIGH_BYTES = bytes(range(128, 256))
# Lines a careless relay could mistake for the end of DATA or an mbox "From " separator.
_RISKY_QP_LINE = re.compile(rb"^(?:\.|From )[^\n]*", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Mailbox:
    email: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class MessageParts:
    """Everything one message is made of. ``message_id`` has no angle brackets; ``date`` is
    timezone-aware; ``extra_headers`` are (field name, value) pairs such as List-Unsubscribe."""

    sender: Mailbox
    recipient: Mailbox
    subject: str
    html: str
    text: str
    message_id: str
    date: datetime
    reply_to: Mailbox | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()


class ComposeError(PostroomError):
    """A message cannot be composed: a malformed address, Message-ID, date or header name."""

    code = "compose_error"
    status = 422


def sanitize_header_text(value: str) -> str:
    """Return ``value`` safe for one header line: each run of line breaks (CR, LF, NEL, U+2028,
    U+2029) and each TAB becomes a space; NUL and the other C0/C1 controls are removed."""
    if value.isprintable():
        return value
    value = _LINE_BREAK_RUNS.sub(" ", value.replace("\t", " "))
    return _OTHER_CONTROLS.sub("", value)


def compose_message(parts: MessageParts) -> bytes:
    """Return the complete message as bytes with CRLF line endings, ready for SMTP DATA."""
    return CampaignComposer(parts.sender, reply_to=parts.reply_to).compose_parts(parts)


class CampaignComposer:
    """Composes every message of one campaign, preparing what they share only once.

    ``extra_headers`` given here go into every message; ``compose`` can add per-message ones.
    """

    def __init__(
        self,
        sender: Mailbox,
        *,
        reply_to: Mailbox | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self._from_header = _mailbox_header("From", sender)
        self._reply_to_header = _mailbox_header("Reply-To", reply_to) if reply_to else ""
        self._campaign_headers = "".join(
            _extra_header(name, value) for name, value in extra_headers
        )
        self._boundaries = _Boundaries()
        self._encoded_lines = QuotedPrintableLines()

    def compose_parts(self, parts: MessageParts) -> bytes:
        """:meth:`compose` for a message given as :class:`MessageParts` (its sender and
        reply-to are this composer's)."""
        return self.compose(
            parts.recipient,
            subject=parts.subject,
            html=parts.html,
            text=parts.text,
            message_id=parts.message_id,
            date=parts.date,
            extra_headers=parts.extra_headers,
        )

    def compose(
        self,
        recipient: Mailbox,
        *,
        subject: str,
        html: str,
        text: str,
        message_id: str,
        date: datetime,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> bytes:
        """Return one message as bytes; raise ComposeError for malformed input."""
        boundary = self._boundaries.next()
        head = "".join(
            (
                self._from_header,
                _mailbox_header("To", recipient),
                self._reply_to_header,
                _unstructured_header("Subject", subject),
                "Date: ",
                _format_date(date),
                "\r\nMessage-ID: <",
                _checked_message_id(message_id),
                ">\r\n",
                self._campaign_headers,
                *(_extra_header(name, value) for name, value in extra_headers),
                'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="',
                boundary,
                '"\r\n\r\n',
            )
        )
        delimiter = b"--" + boundary.encode("ascii")
        return b"".join(
            (
                head.encode("utf-8"),
                _body_part(delimiter, b"text/plain", text, self._encoded_lines),
                _body_part(delimiter, b"text/html", html, self._encoded_lines),
                delimiter,
                b"--\r\n",
            )
        )


class _Boundaries:
    """Multipart boundaries: "=_", a random part drawn once per composer, and a counter.

    "=_" can never appear in quoted-printable output ("=" is always followed by two hex
    digits or a line break) nor in base64 (no "_"), so a boundary cannot collide with either
    body whatever follows; the random part keeps nested or forwarded copies apart, and the
    counter (rather than fresh randomness per message) spares a system call per message.
    """

    def __init__(self) -> None:
        self._prefix = "=_" + os.urandom(9).hex() + "."
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter)}"


def _format_date(date: datetime) -> str:
    if date.tzinfo is None or date.utcoffset() is None:
        raise ComposeError("the message date must be timezone-aware")
    return format_datetime(date)


def _checked_message_id(message_id: str) -> str:
    is_printable_ascii = message_id.isascii() and message_id.isprintable()
    fits_one_line = len("Message-ID: <>") + len(message_id) <= _MAX_LINE_BYTES
    if not (is_printable_ascii and fits_one_line and _MESSAGE_ID.fullmatch(message_id)):
        raise ComposeError(f"not a valid Message-ID: {message_id!r}")
    return message_id


def wire_address(email: str) -> str:
    """The addr-spec as it goes on the wire (headers and SMTP envelope): a non-ASCII domain
    becomes IDNA; a non-ASCII local part stays UTF-8 and needs SMTPUTF8. Raises ComposeError."""
    if not (email.isprintable() and _ADDRESS.fullmatch(email)):
        raise ComposeError(f"not a usable email address: {email!r}")
    local, _, domain = email.rpartition("@")
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except UnicodeError as exc:  # idna.IDNAError is one
            raise ComposeError(f"not a valid internationalised domain: {domain!r}") from exc
    return f"{local}@{domain}"


def _mailbox_header(field: str, mailbox: Mailbox) -> str:
    address = wire_address(mailbox.email)
    name = sanitize_header_text(mailbox.name or "").strip()
    if not name:
        return _fold(field, [address], may_start_on_next_line=True)
    words = _plain_phrase(name)
    if words is None:
        words = _encoded_words(name, field, may_start_on_next_line=True)
    return _fold(field, [*words, f"<{address}>"], may_start_on_next_line=True)


def _plain_phrase(name: str) -> list[str] | None:
    """A display name as atoms or one quoted string, or None if it has to be encoded."""
    if not name.isascii() or "=?" in name:
        return None
    if _ATOMS.fullmatch(name):
        words = name.split(" ")
    else:
        words = ['"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"']
    # A word that cannot fit on a folded line of its own is better encoded, which can be split.
    return words if max(map(len, words)) < _FOLDED_LINE_CHARS else None


def _unstructured_header(field: str, value: str) -> str:
    text = sanitize_header_text(value).strip()
    if text.isascii() and "=?" not in text:
        # Splitting on single spaces keeps runs of spaces: folding replaces one " " by "\r\n ".
        words = text.split(" ")
        first_line_chars = len(field) + 2 + len(words[0])
        if first_line_chars <= _FOLDED_LINE_CHARS and max(map(len, words)) < _FOLDED_LINE_CHARS:
            return _fold(field, words)
    return _fold(field, _encoded_words(text, field))


def _extra_header(field: str, value: str) -> str:
    if not _FIELD_NAME.fullmatch(field) or field.lower() in _RESERVED_FIELD_NAMES:
        raise ComposeError(f"not an allowed header field name: {field!r}")
    text = sanitize_header_text(value).strip()
    if text.isascii() and "=?" not in text:
        # Possibly a structured field (List-Unsubscribe): it may only be folded, not encoded.
        return _fold(field, text.split(" "))
    return _fold(field, _encoded_words(text, field))


def _fold(field: str, words: Sequence[str], *, may_start_on_next_line: bool = False) -> str:
    """Join ``words`` with single spaces, turning a space into CRLF + space where a line would
    pass 78 characters; raise ComposeError if a line still exceeds 998 bytes.

    Only structured fields (addresses) may leave the field name alone on its first line:
    readers keep the leading whitespace of an unstructured value such as a Subject.
    """
    lines: list[str] = []
    line = field + ":"
    for index, word in enumerate(words):
        too_long = len(line) + 1 + len(word) > _FOLDED_LINE_CHARS
        # Folding before an empty word would leave a line of only whitespace, and leaving the
        # field name alone on its line only helps if the word then fits.
        may_fold = index > 0 or (may_start_on_next_line and len(word) < _FOLDED_LINE_CHARS)
        if too_long and word and may_fold:
            lines.append(line)
            line = " " + word
        else:
            line += " " + word
    lines.append(line)
    if max(len(line.encode("utf-8")) for line in lines) > _MAX_LINE_BYTES:
        raise ComposeError(f"the {field} header cannot be folded into lines of 998 bytes")
    return "\r\n".join(lines) + "\r\n"


def _encoded_words(text: str, field: str, *, may_start_on_next_line: bool = False) -> list[str]:
    """RFC 2047 B encoded words for ``text``, each at most 75 characters and never splitting a
    character; the first is sized to fit on the field name's line.

    Where the value may start on the next line (see _fold), a text that fits in one full
    word is kept in one, because some readers (Python's among them) put a space between the
    adjacent encoded words of a display name.
    """
    data = text.encode("utf-8", "replace")  # a lone surrogate cannot be sent; "?" stands in
    full = _encoded_word_capacity(_ENCODED_WORD_CHARS)
    first = _encoded_word_capacity(_FOLDED_LINE_CHARS - len(field) - 2)
    if may_start_on_next_line and (first < 12 or first < len(data) <= full):
        first = full
    words = []
    start, capacity = 0, first
    while start < len(data):
        end = _character_boundary(data, start, start + capacity)
        chunk = binascii.b2a_base64(data[start:end], newline=False).decode("ascii")
        words.append(f"{_ENCODED_WORD_PREFIX}{chunk}?=")
        start, capacity = end, full
    return words


def _encoded_word_capacity(room: int) -> int:
    """How many bytes fit in an encoded word of at most ``room`` characters."""
    return (min(room, _ENCODED_WORD_CHARS) - _ENCODED_WORD_OVERHEAD) // 4 * 3


def _character_boundary(data: bytes, start: int, end: int) -> int:
    """The largest UTF-8 character boundary in (start, end], or the end of the first
    character after ``start`` when not even one fits."""
    if end >= len(data):
        return len(data)
    boundary = end
    while boundary > start and data[boundary] & 0xC0 == 0x80:  # a continuation byte
        boundary -= 1
    if boundary > start:
        return boundary
    boundary = start + 1
    while boundary < len(data) and data[boundary] & 0xC0 == 0x80:
        boundary += 1
    return boundary


def _body_part(
    delimiter: bytes, content_type: bytes, text: str, encoded_lines: QuotedPrintableLines
) -> bytes:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    data = text.encode("utf-8", "replace")
    if _prefers_base64(data):
        encoding, body = b"base64", _base64_body(data)
    else:
        encoding, body = b"quoted-printable", _quoted_printable_body(data, encoded_lines)
    return b"".join(
        (
            delimiter,
            b"\r\nContent-Type: ",
            content_type,
            b'; charset="utf-8"\r\nContent-Transfer-Encoding: ',
            encoding,
            b"\r\n\r\n",
            body,
            b"\r\n",
        )
    )


def _prefers_base64(data: bytes) -> bool:
    """True when base64 is smaller: quoted-printable spends 3 characters on every non-ASCII
    byte, base64 4 on every 3 bytes, so base64 wins past one non-ASCII byte in six."""
    if data.isascii():
        return False
    non_ascii = len(data) - len(data.translate(None, _HIGH_BYTES))
    return non_ascii * 6 > len(data)


def _base64_body(data: bytes) -> bytes:
    # Text is canonically CRLF-terminated (RFC 2046), so line breaks are converted first.
    encoded = binascii.b2a_base64(data.replace(b"\n", b"\r\n"), newline=False)
    step = _BASE64_LINE_CHARS
    return b"\r\n".join(encoded[start : start + step] for start in range(0, len(encoded), step))


class QuotedPrintableLines:
    """Quoted-printable encoding line by line, remembering the lines it has encoded.

    Quoted-printable is line-local (soft breaks and the escaping of trailing white space
    depend on one line only), so encoding each line and joining them with "\n" gives the same
    bytes as encoding the whole text, and the lines a campaign's template repeats in every
    message (most of them) are encoded once per composer rather than once per message.
    """

    def __init__(self, max_lines: int = 4096) -> None:
        self._max_lines = max_lines
        self._encoded: dict[bytes, bytes] = {}

    def encode(self, data: bytes) -> bytes:
        """``data`` ("\n" line endings) as binascii.b2a_qp would encode it for a text part."""
        encoded = self._encoded
        out = []
        for line in data.split(b"\n"):
            line_encoded = encoded.get(line)
            if line_encoded is None:
                line_encoded = binascii.b2a_qp(line, quotetabs=False, istext=True, header=False)
                if len(encoded) >= self._max_lines:
                    encoded.clear()  # personalised lines are seldom seen twice: start afresh
                encoded[line] = line_encoded
            out.append(line_encoded)
        return b"\n".join(out)


def _quoted_printable_body(data: bytes, encoded_lines: QuotedPrintableLines) -> bytes:
    # The lines are encoded with "\n" endings, and CRLF comes after.
    encoded = encoded_lines.encode(data)
    if encoded.startswith((b".", b"From ")) or b"\n." in encoded or b"\nFrom " in encoded:
        encoded = _RISKY_QP_LINE.sub(_escape_risky_line, encoded)
    return encoded.replace(b"\n", b"\r\n")


def _escape_risky_line(match: re.Match[bytes]) -> bytes:
    return _escape_line_start(match.group())


def _escape_line_start(line: bytes) -> bytes:
    """Encode the first character of a quoted-printable line starting with "." or "From ",
    re-breaking the line if that makes it longer than 76 characters."""
    line = (b"=2E" if line.startswith(b".") else b"=46") + line[1:]
    if len(line) <= _QP_LINE_CHARS:
        return line
    cut = _QP_LINE_CHARS - 1  # leaves room for the soft line break "="
    while b"=" in line[cut - 2 : cut]:  # never cut through an "=XX" escape
        cut -= 1
    rest = line[cut:]
    if rest.startswith((b".", b"From ")):
        rest = _escape_line_start(rest)
    return line[:cut] + b"=\n" + rest
