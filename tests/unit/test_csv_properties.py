"""Properties of what a recipient file goes through: any bytes give a report or a FileRejected
with a code (never another exception), and header and address normalisation keep their word."""

from __future__ import annotations

import io
import re
import unicodedata

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from postroom.errors import FileRejected
from postroom.files.addresses import Address, AddressProblem, check_address
from postroom.files.csvreader import CsvLimits, Recipient, RecipientFile, RowProblem
from postroom.files.headers import (
    EMAIL_COLUMN_CANDIDATES,
    find_email_column,
    identifier_for,
    normalise_headers,
)

# --- the CSV reader: any bytes in ------------------------------------------------------------

# Pieces that reach the reader's branches far more often than uniform bytes: line ends of every
# style, quotes, each delimiter candidate, byte-order marks, file signatures, NUL, control
# characters, invalid UTF-8, Windows-1252 and Unicode line breaks.
_PIECES = [
    b"email",
    b"Email",
    b"E-mail",
    b"name",
    b"a@example.com",
    b"B@Example.COM",
    b"not an address",
    b"a@b.com, c@d.com",
    b",",
    b";",
    b"\t",
    b"|",
    b'"',
    b'""',
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xfe\xff",
    b"PK\x03\x04",
    b"%PDF-",
    b"\x00",
    b"\x01\x02\x1f",
    b"\xe9",
    b"\xc3\xa9",
    b"\xe2\x80\xa8",
    b"\xc2\x85",
    b"\x0b",
]
_BINARY_PIECES = {b"PK\x03\x04", b"%PDF-", b"\x00", b"\x01\x02\x1f"}
_piece_soup = st.lists(st.sampled_from(_PIECES) | st.binary(max_size=4), max_size=60).map(b"".join)
_text_soup = st.lists(
    st.sampled_from([piece for piece in _PIECES if piece not in _BINARY_PIECES]), max_size=60
).map(b"".join)
_headers = st.sampled_from([b"email\n", b"Email;Name\r\n", b"\xef\xbb\xbfname,e-mail\n"])
csv_like_bytes = st.one_of(
    st.binary(max_size=300),
    _piece_soup,
    # A usable header and text after it: read to the end far more often, row problems and all.
    st.tuples(_headers, _text_soup).map(b"".join),
)
# Small limits, so that the whole-file rules are broken by inputs of a few hundred bytes.
limits = st.one_of(
    st.just(CsvLimits()),
    st.builds(
        CsvLimits,
        max_columns=st.integers(1, 6),
        max_field_bytes=st.integers(1, 40),
        max_file_bytes=st.integers(0, 400),
        max_line_chars=st.integers(1, 80),
    ),
)
# None (detect) most of the time; the rest are good and bad explicit choices.
delimiters = st.sampled_from([None] * 10 + [",", ";", "\t", "|", '"', "\n", "", ",,", "é"])
email_columns = st.sampled_from([None] * 6 + ["email", "E-mail", "name", "nope", "", "1"])


@settings(max_examples=400, deadline=None)
@given(
    data=csv_like_bytes,
    chunk_bytes=st.integers(1, 64),
    limits=limits,
    delimiter=delimiters,
    email_column=email_columns,
)
@example(data=b"email\r\na@example.com\r\n", chunk_bytes=1, limits=CsvLimits(), delimiter=None,
         email_column=None)  # fmt: skip
@example(data=b'email\n"a@example.com', chunk_bytes=3, limits=CsvLimits(), delimiter=None,
         email_column=None)  # fmt: skip
@example(data=b"\xff\xfee\x00\xd8", chunk_bytes=1, limits=CsvLimits(), delimiter=None,
         email_column=None)  # fmt: skip
def test_any_bytes_give_a_report_or_a_file_rejection(
    data: bytes,
    chunk_bytes: int,
    limits: CsvLimits,
    delimiter: str | None,
    email_column: str | None,
) -> None:
    recipients = RecipientFile(
        io.BytesIO(data),
        delimiter=delimiter,
        email_column=email_column,
        limits=limits,
        chunk_bytes=chunk_bytes,
    )
    _assert_a_report_or_a_rejection(recipients)


@settings(max_examples=300, deadline=None)
@given(data=st.tuples(_headers, _text_soup).map(b"".join), chunk_bytes=st.integers(1, 64))
def test_text_after_a_header_gives_a_report_or_a_file_rejection(
    data: bytes, chunk_bytes: int
) -> None:
    _assert_a_report_or_a_rejection(RecipientFile(io.BytesIO(data), chunk_bytes=chunk_bytes))


def _assert_a_report_or_a_rejection(recipients: RecipientFile) -> None:
    results: list[Recipient | RowProblem] = []
    try:
        results.extend(recipients.rows())
    except FileRejected as rejected:
        event(f"rejected: {rejected.code}")
        # A clear error: a stable code, a sentence, details for the API's error body.
        assert rejected.code and rejected.code != "internal_error"
        assert rejected.code.replace("_", "").isalpha() and rejected.code.islower()
        assert rejected.status < 500
        assert rejected.message.strip()
        assert isinstance(rejected.details, dict)
        return

    event("read to the end")
    assert results, "a file read to the end has at least one record"
    assert recipients.email_column in recipients.columns
    assert len(set(recipients.columns)) == len(recipients.columns)
    rows = [result.row for result in results]
    assert rows == sorted(set(rows)) and rows[0] >= 2
    email_column = recipients.email_column
    for result in results:
        if isinstance(result, Recipient):
            assert list(result.fields) == recipients.columns
            assert result.fields[email_column] == result.fields[email_column].strip()
            assert result.key == result.email.lower()
        else:
            assert result.reason in {
                "invalid_email",
                "missing_email",
                "multiple_addresses",
                "too_many_fields",
            }
            assert result.detail


# --- header normalisation ----------------------------------------------------------------------

header_cells = st.one_of(
    st.text(max_size=16),
    st.sampled_from(
        [
            "Email",
            " e-mail ",
            "\ufeffEmail",
            "\uff25\uff2d\uff21\uff29\uff2c",
            "1st",
            "_",
            "ﬁle",
            "x²",
            "",
        ]
    ),
)


@settings(max_examples=300, deadline=None)
@given(header_cells)
def test_identifier_for_is_total_idempotent_and_an_identifier_or_empty(raw: str) -> None:
    name = identifier_for(raw)

    assert name == "" or name.isidentifier()
    assert identifier_for(name) == name
    assert name == name.lower() and not name.startswith("_") and not name.endswith("_")
    assert not name[:1].isdigit()  # a leading digit gets "col_"
    if raw.strip() and raw.strip()[0].isascii() and raw.strip()[0].isdigit():
        assert name.startswith("col_")
    assert unicodedata.normalize("NFKC", name) == name


@settings(max_examples=300, deadline=None)
@given(st.lists(header_cells, max_size=25))
def test_normalised_headers_are_unique_identifiers_and_a_fixed_point(raw: list[str]) -> None:
    names, warnings = normalise_headers(raw)

    assert len(names) == len(raw)
    assert len(set(names)) == len(names)
    assert all(name.isidentifier() for name in names)
    bases = [identifier_for(cell) or f"column_{p}" for p, cell in enumerate(raw, 1)]
    for index, (base, name) in enumerate(zip(bases, names, strict=True)):
        if base not in bases[:index]:
            assert name == base  # the first of a name keeps it
        else:
            suffix = re.fullmatch(re.escape(base) + r"_(\d+)", name)
            assert suffix is not None and int(suffix.group(1)) >= 2, (base, name)
    # One warning per name that repeats.
    assert len(warnings) == sum(1 for base in set(bases) if bases.count(base) > 1)
    # Normalising the names again changes nothing: a saved header reads back the same.
    assert normalise_headers(names) == (names, [])


@settings(max_examples=200, deadline=None)
@given(st.lists(header_cells, max_size=12), st.none() | header_cells)
def test_find_email_column_names_a_column_or_rejects(raw: list[str], requested: str | None) -> None:
    columns, _ = normalise_headers(raw)
    try:
        found = find_email_column(columns, requested)
    except FileRejected as rejected:
        assert rejected.code == "no_email_column"
        if requested is None:
            assert not set(EMAIL_COLUMN_CANDIDATES) & set(columns)
        else:
            assert identifier_for(requested) not in columns
        return
    assert found in columns
    if requested is not None:
        assert found == identifier_for(requested)


# --- address normalisation ---------------------------------------------------------------------

_LOCAL = st.text(
    st.sampled_from("abcXYZ019._%+-'&=!#$*/?^`{|}~\"\\ @é\u200b\ufeff()<>[],;:"), max_size=20
)
_DOMAIN = st.sampled_from(
    [
        "example.com",
        "EXAMPLE.org",
        "bücher.de",
        "xn--bcher-kva.de",
        "a.b",
        "localhost",
        "-bad.com",
        "[127.0.0.1]",
        "exa mple.com",
        "例え.jp",
        "\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",
        "",
    ]
)
cells = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda pad, local, domain, trail: f"{pad}{local}@{domain}{trail}",
        st.sampled_from(["", " ", "\u200b", "\ufeff", "\t"]),
        _LOCAL,
        _DOMAIN,
        st.sampled_from(["", " ", "\u200b", "\n"]),
    ),
)


@settings(max_examples=500, deadline=None)
@given(cells)
@example("x" * 300)
@example("a@" + "b" * 64 + ".com")
@example("\u200b\ufeff")
@example('"a@b"@example.com')
def test_check_address_never_raises_and_a_valid_key_is_stable(raw: str) -> None:
    found = check_address(raw)

    if isinstance(found, AddressProblem):
        assert found.reason in {"invalid_email", "missing_email", "multiple_addresses"}
        assert found.detail
        return
    assert isinstance(found, Address)
    assert found.key == found.email.lower()
    # The normalised form is itself valid and normalises to the same address and key.
    again = check_address(found.email)
    assert isinstance(again, Address)
    assert (again.email, again.key) == (found.email, found.key)
    if found.ascii_email is not None:
        assert found.ascii_email.isascii()
        from_ascii = check_address(found.ascii_email)
        assert isinstance(from_ascii, Address) and from_ascii.key == found.key
