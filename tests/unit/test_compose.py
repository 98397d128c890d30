"""The MIME composer: what it writes must parse back to exactly what it was given."""

from __future__ import annotations

import binascii
import re
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postroom.delivery.compose import (
    CampaignComposer,
    ComposeError,
    Mailbox,
    MessageParts,
    QuotedPrintableLines,
    compose_message,
    sanitize_header_text,
)

DATE = datetime(2024, 3, 5, 14, 7, 9, tzinfo=timezone(timedelta(hours=1)))
BASE_HEADERS = ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"]
LONG_HTML = "<p>" + "Some newsletter text, with a link. " * 200 + "</p>\n"


def make_parts(**changes: Any) -> MessageParts:
    values: dict[str, Any] = {
        "sender": Mailbox("news@example.com", "Example News"),
        "recipient": Mailbox("ann@example.org", "Ann Smith"),
        "subject": "Hello",
        "html": "<p>Hello</p>\n",
        "text": "Hello\n",
        "message_id": "m1.c1@example.com",
        "date": DATE,
    }
    values.update(changes)
    return MessageParts(**values)


def parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def raw_headers(raw: bytes) -> dict[str, str]:
    """Header values as written, unfolded but not decoded."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8").replace("\r\n ", " ")
    headers: dict[str, str] = {}
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        headers[name] = value.removeprefix(" ")
    return headers


def rfc2047_phrase(raw_value: str) -> str:
    """The display name a reader following RFC 2047 sees (whitespace between encoded words
    dropped), from a raw "phrase <address>" header value."""
    phrase = raw_value.rsplit(" <", 1)[0]
    return str(make_header(decode_header(phrase)))


def body_lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n")


def encoded_body_lines(raw: bytes) -> list[bytes]:
    """The lines of the two parts' encoded bodies, without boundaries or part headers."""
    boundary = parse(raw).get_boundary()
    assert boundary is not None
    lines: list[bytes] = []
    for chunk in raw.split(b"--" + boundary.encode())[1:-1]:
        lines += chunk.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    return lines


def header_lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def assert_no_defects(message: EmailMessage) -> None:
    for part in message.walk():
        assert part.defects == []
        for name, value in part.items():
            assert value.defects == (), name


def normalised(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- the shape of the message -------------------------------------------------------------


def test_headers_are_exactly_the_expected_ones_in_order() -> None:
    message = parse(compose_message(make_parts()))
    assert message.keys() == BASE_HEADERS
    assert_no_defects(message)


def test_reply_to_comes_after_to_when_set() -> None:
    parts = make_parts(reply_to=Mailbox("help@example.com", "Help Desk"))
    message = parse(compose_message(parts))
    assert message.keys() == ["From", "To", "Reply-To", *BASE_HEADERS[2:]]
    assert message["Reply-To"].addresses[0].addr_spec == "help@example.com"
    assert message["Reply-To"].addresses[0].display_name == "Help Desk"


def test_header_values() -> None:
    raw = compose_message(make_parts())
    headers = raw_headers(raw)
    assert headers["From"] == "Example News <news@example.com>"
    assert headers["To"] == "Ann Smith <ann@example.org>"
    assert headers["Subject"] == "Hello"
    assert headers["Date"] == "Tue, 05 Mar 2024 14:07:09 +0100"
    assert headers["Message-ID"] == "<m1.c1@example.com>"
    assert headers["MIME-Version"] == "1.0"
    assert re.fullmatch(
        r'multipart/alternative; boundary="=_[0-9a-f]{18}\.[0-9]+"', headers["Content-Type"]
    )


def test_mailbox_without_name_is_a_bare_address() -> None:
    raw = compose_message(
        make_parts(recipient=Mailbox("bob@example.org"), sender=Mailbox("a@b.c", "  "))
    )
    headers = raw_headers(raw)
    assert headers["To"] == "bob@example.org"
    assert headers["From"] == "a@b.c"


def test_every_line_ends_with_crlf() -> None:
    raw = compose_message(make_parts(text="a\nb\r\nc\rd\n", html=LONG_HTML))
    assert raw.endswith(b"\r\n")
    for line in raw.split(b"\r\n"):
        assert b"\r" not in line
        assert b"\n" not in line


def test_multipart_alternative_with_text_first() -> None:
    message = parse(compose_message(make_parts()))
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"


def test_boundaries_differ_between_messages_and_between_composers() -> None:
    composer = CampaignComposer(Mailbox("news@example.com"))
    parts = make_parts()
    boundaries = {parse(composer.compose_parts(parts)).get_boundary() for _ in range(3)}
    boundaries |= {parse(compose_message(parts)).get_boundary() for _ in range(3)}
    assert len(boundaries) == 6


def test_boundary_cannot_occur_in_bodies() -> None:
    raw = compose_message(make_parts(text="--=_0123456789abcdef01234567\n" * 3, html="=_ --=_"))
    boundary = parse(raw).get_boundary()
    assert boundary is not None
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert body.count(boundary.encode()) == 3  # two delimiters and the close


# --- subjects ------------------------------------------------------------------------------

SUBJECTS = [
    "Plain ASCII subject",
    "Ümlauts and accents: café, naïve, Zoë",
    "Emoji 🎉👋🏽 and a family 👨‍👩‍👧‍👦",
    "日本語の件名です。とても長い件名ですが、正しく折り返されるべきです。" * 3,
    "A very long ASCII subject line " * 12,
    "Long token " + "x" * 120,
    "Quotes \"double\" 'single' and back\\slashes",
    "Looks encoded =?utf-8?q?not_really?= but is text",
    "=?UTF-8?B?SGk=?=",
    "Multiple   spaces   kept",
    'Symbols: <>()[]:;@,.\\"',
    "",
]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_subject_decodes_to_the_input(subject: str) -> None:
    raw = compose_message(make_parts(subject=subject))
    message = parse(raw)
    assert message["Subject"] == subject.strip()  # surrounding whitespace means nothing
    assert_no_defects(message)
    for line in header_lines(raw):
        if line.startswith(b"Subject:") or line.startswith(b" =?"):
            assert len(line) <= 78


def test_encoded_words_are_at_most_75_chars_and_split_on_characters() -> None:
    subject = "é👋" * 100
    raw = compose_message(make_parts(subject=subject))
    words = re.findall(r"=\?utf-8\?b\?[^?]*\?=", raw_headers(raw)["Subject"])
    assert len(words) > 1
    for word in words:
        assert len(word) <= 75
        str(make_header(decode_header(word)))  # each word decodes on its own
    assert parse(raw)["Subject"] == subject


def test_text_that_looks_encoded_is_encoded() -> None:
    raw = compose_message(make_parts(subject="=?UTF-8?Q?=0A?=Bcc: x@evil.test"))
    assert raw_headers(raw)["Subject"].startswith("=?utf-8?b?")
    message = parse(raw)
    assert message["Subject"] == "=?UTF-8?Q?=0A?=Bcc: x@evil.test"
    assert message.keys() == BASE_HEADERS


@pytest.mark.parametrize(
    "subject",
    [
        "Hi\r\nBcc: evil@x.test",
        "Hi\nBcc: evil@x.test",
        "Hi\rBcc: evil@x.test",
        "Hi\x00\r\n\r\nBody",
    ],
)
def test_line_breaks_in_subject_cannot_add_headers(subject: str) -> None:
    message = parse(compose_message(make_parts(subject=subject)))
    assert message.keys() == BASE_HEADERS
    assert "\n" not in message["Subject"]
    assert message["Subject"] == sanitize_header_text(subject).strip()


# --- display names and addresses -------------------------------------------------------------

NAMES = [
    "Ann Smith",
    "Smith, Ann",
    "Ann Q. Smith",
    'Ann "The Boss" Smith',
    'Back\\slash \\ and "quote',
    "Zoë Wańkowicz",
    "Ann 🎉",
    "李小龙",
    "=?utf-8?q?Ann?=",
    "Ann <ann@other.test>",
    "  padded  ",
    "a" * 70,
    "Two  spaces",
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("field", ["From", "To", "Reply-To"])
def test_display_name_decodes_to_the_input(name: str, field: str) -> None:
    mailbox = Mailbox("person@example.org", name)
    parts = make_parts(sender=mailbox, recipient=mailbox, reply_to=mailbox)
    message = parse(compose_message(parts))
    addresses = message[field].addresses
    assert len(addresses) == 1
    assert addresses[0].addr_spec == "person@example.org"
    assert addresses[0].display_name == name.strip()
    assert_no_defects(message)


def test_long_non_ascii_name_is_split_into_several_encoded_words() -> None:
    name = "Zoë Wańkowicz-Smithson of the Great Internationał Trading Company Limited"
    raw = compose_message(make_parts(recipient=Mailbox("z@example.org", name)))
    raw_to = raw_headers(raw)["To"]
    assert raw_to.count("=?utf-8?b?") > 1
    assert rfc2047_phrase(raw_to) == name
    # Python's own parser puts a space between adjacent encoded words of a display name
    # (RFC 2047 says to drop it), so only the letters are compared here.
    display_name = parse(raw)["To"].addresses[0].display_name
    assert display_name.replace(" ", "") == name.replace(" ", "")
    for line in header_lines(raw):
        assert len(line) <= 78


def test_name_that_fits_one_encoded_word_is_not_split() -> None:
    name = "Ж" * 22  # 44 bytes: one word, too long for the first line of the field
    raw = compose_message(make_parts(reply_to=Mailbox("r@example.org", name)))
    assert raw_headers(raw)["Reply-To"].count("=?utf-8?b?") == 1
    assert parse(raw)["Reply-To"].addresses[0].display_name == name
    for line in header_lines(raw):
        assert len(line) <= 78


def test_encoded_word_injection_in_name_stays_in_the_name() -> None:
    name = "Bob =?UTF-8?Q?=0A?=Bcc: x@evil.test"
    raw = compose_message(make_parts(recipient=Mailbox("bob@example.org", name)))
    message = parse(raw)
    assert message.keys() == BASE_HEADERS
    (address,) = message["To"].addresses
    assert (address.display_name, address.addr_spec) == (name, "bob@example.org")


def test_line_breaks_in_names_cannot_add_headers_or_recipients() -> None:
    parts = make_parts(
        sender=Mailbox("news@example.com", "News\r\nBcc: evil@x.test"),
        recipient=Mailbox("ann@example.org", "Ann\n, Eve <eve@x.test>"),
        reply_to=Mailbox("help@example.com", "Help\r\n\r\nbody"),
    )
    message = parse(compose_message(parts))
    assert message.keys() == ["From", "To", "Reply-To", *BASE_HEADERS[2:]]
    assert [a.addr_spec for a in message["To"].addresses] == ["ann@example.org"]
    assert message["To"].addresses[0].display_name == "Ann , Eve <eve@x.test>"
    assert message["From"].addresses[0].display_name == "News Bcc: evil@x.test"


def test_non_ascii_domain_becomes_idna() -> None:
    raw = compose_message(make_parts(recipient=Mailbox("ann@bücher.example", "Ann")))
    assert raw_headers(raw)["To"] == "Ann <ann@xn--bcher-kva.example>"
    assert parse(raw)["To"].addresses[0].domain == "xn--bcher-kva.example"


def test_non_ascii_local_part_stays_utf8() -> None:
    raw = compose_message(make_parts(recipient=Mailbox("jörg@example.org", "Jörg")))
    assert "To: =?utf-8?b?SsO2cmc=?= <jörg@example.org>\r\n".encode() in raw
    message = BytesParser(policy=policy.SMTPUTF8).parsebytes(raw)
    assert message.keys() == BASE_HEADERS


@pytest.mark.parametrize(
    "email",
    [
        "ann@example.org\r\nBcc: evil@x.test",
        "ann@example.org\nBcc: evil@x.test",
        "ann@example.org, eve@x.test",
        "ann@example.org eve@x.test",
        "<ann@example.org>",
        "Ann <ann@example.org>",
        "ann",
        "ann@",
        "@example.org",
        "ann@@example.org",
        "an\x00n@example.org",
        '"ann"@example.org',
        "ann@exa mple.org",
        "ann@☃-⌘.example",
    ],
)
def test_unusable_addresses_are_refused(email: str) -> None:
    with pytest.raises(ComposeError) as caught:
        compose_message(make_parts(recipient=Mailbox(email)))
    assert caught.value.code == "compose_error"
    with pytest.raises(ComposeError):
        CampaignComposer(Mailbox(email))


# --- other headers ---------------------------------------------------------------------------


def test_date_must_be_aware() -> None:
    with pytest.raises(ComposeError):
        compose_message(make_parts(date=datetime(2024, 1, 1, 12, 0)))
    raw = compose_message(make_parts(date=datetime(2024, 1, 1, 12, 0, tzinfo=UTC)))
    assert raw_headers(raw)["Date"] == "Mon, 01 Jan 2024 12:00:00 +0000"


@pytest.mark.parametrize(
    "message_id",
    ["", "no-at-sign", "<a@b>", "a b@c", "a@b\r\nBcc: x@y", "é@b", "a@b@c", "a@" + "b" * 990],
)
def test_malformed_message_id_is_refused(message_id: str) -> None:
    with pytest.raises(ComposeError):
        compose_message(make_parts(message_id=message_id))


def test_extra_headers_follow_message_id() -> None:
    unsubscribe = "<https://example.com/u/" + "t" * 60 + ">, <mailto:u@example.com?subject=stop>"
    parts = make_parts(
        extra_headers=(("List-Unsubscribe", unsubscribe), ("X-Campaign", "Spring\r\nBcc: x@y"))
    )
    raw = compose_message(parts)
    message = parse(raw)
    assert message.keys() == [
        *BASE_HEADERS[:5],
        "List-Unsubscribe",
        "X-Campaign",
        *BASE_HEADERS[5:],
    ]
    assert raw_headers(raw)["List-Unsubscribe"] == unsubscribe
    assert message["X-Campaign"] == "Spring Bcc: x@y"


def test_non_ascii_extra_header_is_encoded() -> None:
    message = parse(compose_message(make_parts(extra_headers=(("X-Note", "Grüße"),))))
    assert message["X-Note"] == "Grüße"


@pytest.mark.parametrize(
    "name", ["", "X Note", "X:Note", "Bcc", "to", "Subject", "Content-Type", "X-Ünicode", "X\nY"]
)
def test_bad_or_reserved_extra_header_names_are_refused(name: str) -> None:
    with pytest.raises(ComposeError):
        compose_message(make_parts(extra_headers=((name, "value"),)))


def test_unfoldable_extra_header_is_refused() -> None:
    with pytest.raises(ComposeError):
        compose_message(make_parts(extra_headers=(("X-Token", "t" * 1000),)))


# --- bodies ---------------------------------------------------------------------------------

BODIES = [
    "Hello\n",
    "No trailing newline",
    "",
    "CRLF\r\nand CR\rand LF\n",
    "trailing spaces   \nand tabs\t\t\n",
    "=equals= and =3D and ==\n",
    ".\n..leading dots\n.\nFrom the start\nFrom\n",
    "x" * 500 + "\n" + "y" * 77 + "\n",
    "." + "a" * 74 + "=\n",
    "From " + "é" * 30 + "\n",
    "Café, naïve, Zoë — “quotes” €\n",
    "日本語のテキストです。" * 40,
    "Emoji 🎉👋🏽\n" * 20,
    "\x00\x01 controls \x7f\n",
    LONG_HTML,
]


@pytest.mark.parametrize("body", BODIES)
def test_bodies_decode_to_the_input(body: str) -> None:
    raw = compose_message(make_parts(text=body, html=body))
    message = parse(raw)
    assert_no_defects(message)
    for part in message.iter_parts():
        content = part.get_content()
        assert isinstance(content, str)
        assert normalised(content) == normalised(body)


@pytest.mark.parametrize("body", BODIES)
def test_body_lines_are_short_and_safe(body: str) -> None:
    raw = compose_message(make_parts(text=body, html=body))
    for line in body_lines(raw):
        assert len(line) <= 76
        assert not line.startswith(b".")
        assert not line.startswith(b"From ")


def test_mostly_non_ascii_body_uses_base64() -> None:
    message = parse(
        compose_message(make_parts(text="日本語のテキストです。" * 40, html="<p>hi</p>"))
    )
    text_part, html_part = message.iter_parts()
    assert text_part["Content-Transfer-Encoding"] == "base64"
    assert html_part["Content-Transfer-Encoding"] == "quoted-printable"


def test_mostly_ascii_body_with_some_accents_uses_quoted_printable() -> None:
    message = parse(compose_message(make_parts(text="Café au lait, s'il vous plaît. " * 20)))
    assert next(message.iter_parts())["Content-Transfer-Encoding"] == "quoted-printable"


def test_quoted_printable_soft_breaks_never_split_an_escape() -> None:
    body = ("é" * 7 + "a") * 50 + "\n" + ".é" * 80
    raw = compose_message(make_parts(text=body, html=body))
    lines = encoded_body_lines(raw)
    assert any(line.endswith(b"=") for line in lines)
    for line in lines:
        assert not re.search(rb"=(?![0-9A-F]{2}|$)", line)


# --- the campaign composer ------------------------------------------------------------------


def test_campaign_composer_matches_compose_message() -> None:
    parts = make_parts(
        reply_to=Mailbox("help@example.com", "Help"),
        extra_headers=(("List-Unsubscribe", "<https://example.com/u/1>"),),
    )
    ours = CampaignComposer(parts.sender, reply_to=parts.reply_to).compose_parts(parts)
    theirs = compose_message(parts)

    def without_boundary(raw: bytes) -> bytes:
        return re.sub(rb"=_[0-9a-f]{18}\.[0-9]+", b"BOUNDARY", raw)

    assert without_boundary(ours) == without_boundary(theirs)


def test_campaign_headers_go_into_every_message() -> None:
    composer = CampaignComposer(
        Mailbox("news@example.com"), extra_headers=[("List-Id", "<news.example.com>")]
    )
    for index in range(2):
        raw = composer.compose(
            Mailbox(f"r{index}@example.org"),
            subject="s",
            html="h",
            text="t",
            message_id=f"{index}@example.com",
            date=DATE,
            extra_headers=[("X-Row", str(index))],
        )
        message = parse(raw)
        assert message["List-Id"] == "<news.example.com>"
        assert message["X-Row"] == str(index)


# --- sanitize_header_text -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        ("a\r\nb", "a b"),
        ("a\n\n\nb", "a b"),
        ("a\rb", "a b"),
        ("tab\there", "tab here"),
        ("nul\x00byte", "nulbyte"),
        ("bell\x07 esc\x1b del\x7f c1\x9b", "bell esc del c1"),
        ("nel\x85line\u2028sep\u2029para", "nel line sep para"),
        ("keeps  runs and\u00a0nbsp ", "keeps  runs and\u00a0nbsp "),
        ("émoji 🎉", "émoji 🎉"),
    ],
)
def test_sanitize_header_text(value: str, expected: str) -> None:
    assert sanitize_header_text(value) == expected


# --- properties -----------------------------------------------------------------------------

INJECTION_PIECES = [
    "=?",
    "?=",
    "=?UTF-8?Q?",
    "=?utf-8?b?",
    "?Q?",
    "?B?",
    "=0A",
    "=0D",
    "Cg==",
    "\r",
    "\n",
    "\r\n",
    "\x00",
    "\t",
    "\u2028",
    "\x85",
    " ",
    "  ",
    "Bcc: x@evil.test",
    "To: y@evil.test",
    '"',
    "\\",
    ",",
    ";",
    ":",
    "<",
    ">",
    "@",
    "(",
    ")",
    "é",
    "👋",
    "日本",
    "a",
    "Z",
]
header_texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(INJECTION_PIECES), max_size=40).map("".join),
)
addresses = st.from_regex(
    r"[a-z0-9+_-]{1,12}(\.[a-z0-9+_-]{1,12}){0,2}@[a-z0-9]{1,20}\.[a-z]{2,8}", fullmatch=True
)
body_texts = st.text(max_size=600) | st.lists(
    st.sampled_from([*INJECTION_PIECES, ".", "From ", "=", "\n"]), max_size=200
).map("".join)


def assert_header_matches(
    field: str, message: EmailMessage, raw_value: str, mailbox: Mailbox
) -> None:
    (address,) = message[field].addresses
    assert address.addr_spec == mailbox.email
    expected = sanitize_header_text(mailbox.name or "").strip()
    if "=?utf-8?b?" in raw_value:
        assert rfc2047_phrase(raw_value) == expected
        # Python's parser changes whitespace in encoded display names (it adds a space between
        # adjacent encoded words and squeezes runs), so it is only held to the other characters.
        assert "".join(address.display_name.split()) == "".join(expected.split())
    else:
        assert address.display_name == expected


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    subject=header_texts,
    sender_name=header_texts,
    recipient_name=header_texts,
    reply_name=st.none() | header_texts,
    recipient_email=addresses,
    text=body_texts,
    html=body_texts,
)
def test_any_input_gives_a_well_formed_message(
    subject: str,
    sender_name: str,
    recipient_name: str,
    reply_name: str | None,
    recipient_email: str,
    text: str,
    html: str,
) -> None:
    sender = Mailbox("news@example.com", sender_name)
    recipient = Mailbox(recipient_email, recipient_name)
    reply_to = None if reply_name is None else Mailbox("reply@example.com", reply_name)
    parts = make_parts(
        sender=sender, recipient=recipient, reply_to=reply_to, subject=subject, text=text, html=html
    )
    raw = compose_message(parts)

    for line in raw.split(b"\r\n"):
        assert len(line) <= 998
        assert b"\r" not in line and b"\n" not in line
    for line in header_lines(raw):
        assert len(line) <= 78 or b"@" in line

    message = parse(raw)
    expected_names = (
        BASE_HEADERS if reply_to is None else ["From", "To", "Reply-To", *BASE_HEADERS[2:]]
    )
    assert message.keys() == expected_names
    for name, value in message.items():
        assert "\n" not in str(value) and "\r" not in str(value), name
    assert_no_defects(message)

    assert message["Subject"] == sanitize_header_text(subject).strip()
    headers = raw_headers(raw)
    assert_header_matches("From", message, headers["From"], sender)
    assert_header_matches("To", message, headers["To"], recipient)
    if reply_to is not None:
        assert_header_matches("Reply-To", message, headers["Reply-To"], reply_to)

    text_part, html_part = message.iter_parts()
    assert normalised(text_part.get_content()) == normalised(text)
    assert normalised(html_part.get_content()) == normalised(html)
    for line in body_lines(raw):
        assert len(line) <= 76


_QP_PIECES = [*"ab .=\t\né€F\x00", "From ", "x" * 80, " \n"]
_QP_TEXTS = st.lists(st.sampled_from(_QP_PIECES), max_size=40).map("".join)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_QP_TEXTS, min_size=1, max_size=4))
def test_line_cached_quoted_printable_equals_encoding_the_whole_text(texts: list[str]) -> None:
    lines = QuotedPrintableLines(max_lines=3)  # small, so that the cache also starts afresh
    for text in texts * 2:  # the second round is served from the cache where it still holds
        data = text.encode("utf-8")
        assert lines.encode(data) == binascii.b2a_qp(
            data, quotetabs=False, istext=True, header=False
        )
