"""Reading recipient CSVs: encodings, dialects, strict quoting, limits, rows and chunk edges."""

from __future__ import annotations

import codecs
import csv
import io
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postroom.errors import FileRejected
from postroom.files.csvreader import (
    CHUNK_BYTES,
    CsvLimits,
    Recipient,
    RecipientFile,
    RowProblem,
    detect_delimiter,
)

# Tiny chunks force lines, multi-byte characters, UTF-16 code units, byte-order marks and
# "\r\n" pairs to straddle chunk boundaries.
CHUNK_SIZES = [1, 2, 3, 5, 8, 13, CHUNK_BYTES]

SIMPLE = b"email,name\r\nann@example.com,Ann\r\nbob@example.com,Bob\r\n"


def read(data: bytes, **options: Any) -> tuple[RecipientFile, list[Recipient | RowProblem]]:
    recipients = RecipientFile(io.BytesIO(data), **options)
    return recipients, list(recipients.rows())


def rejection(data: bytes, **options: Any) -> FileRejected:
    with pytest.raises(FileRejected) as raised:
        read(data, **options)
    return raised.value


def valid(results: list[Recipient | RowProblem]) -> list[Recipient]:
    assert all(isinstance(result, Recipient) for result in results), results
    return [result for result in results if isinstance(result, Recipient)]


def problems(results: list[Recipient | RowProblem]) -> list[RowProblem]:
    return [result for result in results if isinstance(result, RowProblem)]


# --- the happy path ---------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_a_simple_file_gives_one_recipient_per_row(chunk_bytes: int) -> None:
    recipients, results = read(SIMPLE, chunk_bytes=chunk_bytes)

    assert recipients.columns == ["email", "name"]
    assert recipients.email_column == "email"
    assert recipients.delimiter == ","
    assert recipients.encoding == "utf-8"
    assert recipients.warnings == []
    assert recipients.bytes_read == len(SIMPLE)
    assert valid(results) == [
        Recipient(
            2, "ann@example.com", "ann@example.com", {"email": "ann@example.com", "name": "Ann"}
        ),
        Recipient(
            3, "bob@example.com", "bob@example.com", {"email": "bob@example.com", "name": "Bob"}
        ),
    ]


def test_open_reads_only_the_header_and_sets_the_attributes() -> None:
    recipients = RecipientFile(io.BytesIO(b"First Name;E-mail\nAnn;ann@example.com\n"))

    recipients.open()

    assert recipients.columns == ["first_name", "e_mail"]
    assert recipients.email_column == "e_mail"
    assert recipients.delimiter == ";"
    assert recipients.encoding == "utf-8"


def test_rows_can_be_read_only_once() -> None:
    recipients, _ = read(SIMPLE)

    with pytest.raises(RuntimeError):
        list(recipients.rows())


def test_the_email_cell_is_trimmed_in_fields_and_other_cells_are_kept_as_given() -> None:
    _, results = read(b"email,name\n  Ann@Example.com\xc2\xa0, Ann  \n")

    [recipient] = valid(results)
    assert recipient.email == "Ann@example.com"
    assert recipient.key == "ann@example.com"
    assert recipient.fields == {"email": "Ann@Example.com", "name": " Ann  "}


def test_uppercase_duplicates_are_both_returned_with_the_same_key() -> None:
    _, results = read(b"email\nBob@Example.com\nbob@EXAMPLE.com\n")

    first, second = valid(results)
    assert first.key == second.key == "bob@example.com"
    assert (first.row, second.row) == (2, 3)


def test_an_idn_domain_is_read_and_normalised() -> None:
    _, results = read("email\nuser@BÜCHER.de\nuser@xn--bcher-kva.de\n".encode())

    assert [recipient.email for recipient in valid(results)] == ["user@bücher.de"] * 2


# --- encodings --------------------------------------------------------------------------------

TEXT = "email,name\r\njose@example.com,José\r\nzoe@bücher.de,Zoë ✓\r\n"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig"),
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16-le"),
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16-be"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-le", "utf-16-be"],
)
@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_unicode_encodings_are_read(data: bytes, encoding: str, chunk_bytes: int) -> None:
    recipients, results = read(data, chunk_bytes=chunk_bytes)

    assert recipients.encoding == encoding
    assert recipients.columns == ["email", "name"]  # no byte-order mark left in the first name
    assert [r.fields["name"] for r in valid(results)] == ["José", "Zoë ✓"]
    assert valid(results)[1].email == "zoe@bücher.de"
    assert recipients.warnings == []


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_windows_1252_bytes_are_read_as_windows_1252_with_a_warning(chunk_bytes: int) -> None:
    data = b"email,name\r\njose@example.com,Jos\xe9 \x80\r\n"

    recipients, results = read(data, chunk_bytes=chunk_bytes)

    assert [r.fields["name"] for r in valid(results)] == ["José €"]
    assert recipients.encoding == "windows-1252"
    assert len(recipients.warnings) == 1
    assert "Windows-1252" in recipients.warnings[0]
    assert "UTF-8" in recipients.warnings[0]


def test_bytes_undefined_in_windows_1252_become_replacement_characters() -> None:
    _, results = read(b"email,name\njo@example.com,a\x81b\x8dc\xe9\n")

    assert valid(results)[0].fields["name"] == "a\ufffdb\ufffdc\xe9"


def test_the_fallback_starts_at_the_first_chunk_that_is_not_utf8() -> None:
    # Earlier chunks were good UTF-8 and stay as they were read; the failing chunk is read
    # again from its start (with any bytes the UTF-8 decoder was still holding).
    data = "email,name\nzoe@example.com,Zoë\n".encode() + b"jo@example.com,Jos\xe9\n"

    recipients, results = read(data, chunk_bytes=8)

    assert [r.fields["name"] for r in valid(results)] == ["Zoë", "José"]
    assert recipients.encoding == "windows-1252"
    assert "byte 50 " in recipients.warnings[0]


def test_utf8_cut_short_at_the_end_falls_back_too() -> None:
    recipients, results = read(b"email,name\njo@example.com,Jos\xc3")

    assert valid(results)[0].fields["name"] == "Jos\xc3"
    assert recipients.encoding == "windows-1252"


def test_broken_utf16_is_not_csv() -> None:
    data = codecs.BOM_UTF16_LE + "email\na@example.com\n".encode("utf-16-le") + b"\x00\xd8a\x00"

    assert rejection(data).code == "not_csv"


# --- not a CSV at all -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG"),
        (b"PK\x03\x04\x14\x00\x06\x00", "ZIP"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", "Excel"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "gzip"),
    ],
)
@pytest.mark.parametrize("chunk_bytes", [1, CHUNK_BYTES])
def test_known_binary_formats_are_not_csv(data: bytes, fragment: str, chunk_bytes: int) -> None:
    rejected = rejection(data, chunk_bytes=chunk_bytes)

    assert rejected.code == "not_csv"
    assert fragment in rejected.message


@pytest.mark.parametrize(
    "data",
    [
        b"email\x00,name\na@example.com,Ann\n",
        "email\na@example.com\n".encode("utf-16-le"),  # UTF-16 without a byte-order mark
        codecs.BOM_UTF16_LE + "email\na@exam\x00ple.com\n".encode("utf-16-le"),
    ],
    ids=["nul", "utf-16-without-bom", "nul-in-utf-16"],
)
def test_nul_bytes_are_not_csv(data: bytes) -> None:
    assert rejection(data).code == "not_csv"


def test_a_nul_late_in_the_file_is_not_csv_and_names_the_line() -> None:
    data = b"email\n" + b"a@example.com\n" * 1000 + b"b@exa\x00mple.com\n"

    rejected = rejection(data, chunk_bytes=4096)

    assert rejected.code == "not_csv"
    assert rejected.details["line"] == 1002


def test_a_file_full_of_control_characters_is_not_csv() -> None:
    data = b"email\n" + bytes(range(1, 32)) * 10

    assert rejection(data).code == "not_csv"


def test_a_stray_control_character_is_tolerated() -> None:
    _, results = read(b"email,note\na@example.com,page\x0cbreak\n" + b"b@example.com,x\n" * 5)

    assert valid(results)[0].fields["note"] == "page\x0cbreak"


# --- empty files and files without recipients -------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", codecs.BOM_UTF8, b"  \r\n\n\t\r\n", codecs.BOM_UTF16_LE, codecs.BOM_UTF8 + b"\n \n"],
    ids=["zero-bytes", "bom-only", "whitespace", "utf-16-bom-only", "bom-and-blank-lines"],
)
@pytest.mark.parametrize("chunk_bytes", [1, CHUNK_BYTES])
def test_empty_files_are_rejected(data: bytes, chunk_bytes: int) -> None:
    assert rejection(data, chunk_bytes=chunk_bytes).code == "empty_file"


@pytest.mark.parametrize(
    "data",
    [b"email,name", b"email,name\r\n", b"email,name\n\n\r\n", b"email,name\n,\n , \n,,\n"],
    ids=["no-newline", "header-only", "blank-lines", "empty-records"],
)
def test_a_header_without_data_has_no_recipients(data: bytes) -> None:
    recipients = RecipientFile(io.BytesIO(data))
    recipients.open()  # the header itself is fine

    with pytest.raises(FileRejected) as raised:
        list(recipients.rows())

    assert raised.value.code == "no_recipients"


def test_invalid_rows_count_as_records() -> None:
    _, results = read(b"email\nnot-an-address\n")

    assert [problem.reason for problem in problems(results)] == ["invalid_email"]


# --- delimiters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [
        ("email,name,city", ","),
        ("email;name;city", ";"),
        ("email\tname\tcity", "\t"),
        ("email|name|city", "|"),
        ("email;name,city;zip", ";"),  # most frequent wins
        ("email", ","),  # none
        ("email;name,city", ","),  # tie
        ('"a;b;c";email', ";"),
        ('"a;b;c",email', ","),  # delimiters inside quotes do not count
        ('"x,y,z";"p";email', ";"),
    ],
)
def test_the_delimiter_is_detected_from_the_header(header: str, delimiter: str) -> None:
    assert detect_delimiter(header + "\r\n") == delimiter


@pytest.mark.parametrize(("delimiter", "separator"), [(";", b";"), ("\t", b"\t"), ("|", b"|")])
def test_detected_delimiters_split_the_rows(delimiter: str, separator: bytes) -> None:
    data = separator.join([b"email", b"name"]) + b"\n" + separator.join([b"a@example.com", b"A, B"])

    recipients, results = read(data + b"\n")

    assert recipients.delimiter == delimiter
    assert valid(results)[0].fields == {"email": "a@example.com", "name": "A, B"}


def test_an_explicit_delimiter_wins_over_detection() -> None:
    data = b"email;note,with,commas\na@example.com;x,y,z\n"

    recipients, results = read(data, delimiter=";")

    assert recipients.delimiter == ";"
    assert recipients.columns == ["email", "note_with_commas"]
    assert valid(results)[0].fields["note_with_commas"] == "x,y,z"


@pytest.mark.parametrize("delimiter", ["", ";;", '"', "\n", "\r"])
def test_an_explicit_delimiter_must_be_one_usable_character(delimiter: str) -> None:
    rejected = rejection(SIMPLE, delimiter=delimiter)

    assert rejected.code == "invalid_delimiter"


# --- quoting and line ends --------------------------------------------------------------------


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_quoted_newlines_stay_in_the_field_and_rows_count_records(chunk_bytes: int) -> None:
    data = (
        b'email,note\r\na@example.com,"line one\r\nline two"\r\n'
        b'b@example.com,"x ""quoted"", y\nz"\r\nc@example.com,plain\r\n'
    )

    _, results = read(data, chunk_bytes=chunk_bytes)

    rows = valid(results)
    assert [r.row for r in rows] == [2, 3, 4]
    assert [r.fields["note"] for r in rows] == ["line one\r\nline two", 'x "quoted", y\nz', "plain"]


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_every_line_end_style_reads_the_same(line_end: bytes, chunk_bytes: int) -> None:
    lines = [b"email,name", b"a@example.com,A", b"", b'b@example.com,"B1' + line_end + b'B2"']
    data = line_end.join(lines) + line_end

    _, results = read(data, chunk_bytes=chunk_bytes)

    rows = valid(results)
    assert [r.row for r in rows] == [2, 4]  # the blank line keeps its spreadsheet row
    assert rows[1].fields["name"] == "B1" + line_end.decode() + "B2"


@pytest.mark.parametrize("chunk_bytes", range(1, 12))
def test_crlf_pairs_split_across_chunks_are_one_line_end(chunk_bytes: int) -> None:
    data = b"email\r\n" + b"".join(b"u%d@example.com\r\n" % i for i in range(20))

    _, results = read(data, chunk_bytes=chunk_bytes)

    assert [r.row for r in valid(results)] == list(range(2, 22))


def test_a_file_without_a_final_line_end_keeps_its_last_row() -> None:
    _, results = read(b"email\na@example.com\nb@example.com", chunk_bytes=3)

    assert [r.email for r in valid(results)] == ["a@example.com", "b@example.com"]


@pytest.mark.parametrize("separator", ["\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"])
def test_other_unicode_line_breaks_are_field_content(separator: str) -> None:
    data = f"email,note\na@example.com,one{separator}two\nb@example.com,three\n".encode()

    _, results = read(data)

    assert [r.fields["note"] for r in valid(results)] == [f"one{separator}two", "three"]


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_an_unterminated_quote_is_malformed_and_names_its_line(chunk_bytes: int) -> None:
    data = b'email,name\na@example.com,A\nb@example.com,"B\nc@example.com,C\nd@example.com,D\n'

    rejected = rejection(data, chunk_bytes=chunk_bytes)

    assert rejected.code == "malformed_csv"
    assert rejected.details["line"] == 3
    assert "line 3" in rejected.message


def test_an_unterminated_quote_in_a_large_file_is_malformed_not_a_huge_field() -> None:
    rest = b"".join(b"u%d@example.com,U\n" % i for i in range(20_000))  # > csv's own field limit
    data = b'email,name\na@example.com,A\nb@example.com,"B\n' + rest

    rejected = rejection(data, chunk_bytes=4096)

    assert rejected.code == "malformed_csv"
    assert rejected.details["line"] == 3


def test_an_unterminated_quote_in_the_header_is_malformed() -> None:
    rejected = rejection(b'email,"name\na@example.com,A\n')

    assert rejected.code == "malformed_csv"
    assert rejected.details["line"] == 1


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b'email,name\na@example.com,"A"x\n', 2),
        (b'email,name\na@example.com,A\nb@example.com,"B" \n', 3),
        (b'email,name\n\n\na@example.com,"A\nA"B\n', 4),
    ],
)
def test_text_after_a_closing_quote_is_malformed(data: bytes, line: int) -> None:
    rejected = rejection(data)

    assert rejected.code == "malformed_csv"
    assert rejected.details["line"] == line
    assert f"line {line}" in rejected.message


def test_line_numbers_count_blank_lines_before_the_header() -> None:
    rejected = rejection(b'\n\r\nemail,name\na@example.com,"A"x\n')

    assert rejected.details["line"] == 4


def test_a_quoted_header_cell_may_hold_a_newline() -> None:
    recipients, results = read(b'"First\nName",email\nAnn,a@example.com\n')

    assert recipients.columns == ["first_name", "email"]
    assert valid(results)[0].row == 2


def test_a_header_starting_with_a_byte_order_mark_and_a_quote() -> None:
    recipients, _ = read(codecs.BOM_UTF8 + b'"Email","Name"\na@example.com,A\n')

    assert recipients.columns == ["email", "name"]


# --- rows -------------------------------------------------------------------------------------


def test_rows_with_fewer_fields_get_empty_values() -> None:
    _, results = read(b"email,first,last\na@example.com,Ann\nb@example.com\n")

    assert [r.fields for r in valid(results)] == [
        {"email": "a@example.com", "first": "Ann", "last": ""},
        {"email": "b@example.com", "first": "", "last": ""},
    ]


def test_rows_with_more_fields_are_problems() -> None:
    _, results = read(b"email,name\na@example.com,A,extra\nb@example.com,B\n")

    assert problems(results) == [
        RowProblem(
            2, "a@example.com", "too_many_fields", "The row has 3 fields but the header has 2."
        )
    ]
    assert [r.row for r in results if isinstance(r, Recipient)] == [3]


def test_empty_fields_past_the_last_column_are_dropped() -> None:
    _, results = read(b"email,name\na@example.com,A,,\n")

    assert valid(results)[0].fields == {"email": "a@example.com", "name": "A"}


def test_a_missing_email_column_value_is_a_problem() -> None:
    _, results = read(b"name,email\nAnn\nBob,  \n")

    assert [(p.row, p.email, p.reason) for p in problems(results)] == [
        (2, "", "missing_email"),
        (3, "  ", "missing_email"),
    ]


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("a@example.com; b@example.com", "multiple_addresses"),
        ("a@example.com b@example.com", "multiple_addresses"),
        ("not an address", "invalid_email"),
        ("a@localhost", "invalid_email"),
    ],
)
def test_bad_email_cells_are_row_problems_with_the_raw_cell(cell: str, reason: str) -> None:
    data = f'email,name\n"{cell}",X\nok@example.com,Y\n'.encode()

    _, results = read(data)

    [problem] = problems(results)
    assert (problem.row, problem.email, problem.reason) == (2, cell, reason)
    assert problem.detail


def test_blank_records_are_skipped_but_keep_their_row_numbers() -> None:
    data = b"email,name\n\na@example.com,A\n,\n  ,  \n\nb@example.com,B\n"

    _, results = read(data)

    assert [r.row for r in valid(results)] == [3, 7]


def test_an_email_column_can_be_named() -> None:
    data = b"Email,E-Mail Address\nold@example.com,new@example.com\n"

    recipients, results = read(data, email_column="E-Mail Address")

    assert recipients.email_column == "e_mail_address"
    assert valid(results)[0].email == "new@example.com"


@pytest.mark.parametrize(
    ("data", "email_column"),
    [(b"name,phone\nAnn,1\n", None), (b"email,name\na@example.com,A\n", "Work Email")],
)
def test_no_email_column_is_rejected(data: bytes, email_column: str | None) -> None:
    rejected = rejection(data, email_column=email_column)

    assert rejected.code == "no_email_column"


def test_header_warnings_reach_the_file() -> None:
    recipients, _ = read(b"email,Name,name\na@example.com,A,B\n")

    assert recipients.columns == ["email", "name", "name_2"]
    assert len(recipients.warnings) == 1


# --- limits -----------------------------------------------------------------------------------


def test_a_field_at_the_limit_is_accepted() -> None:
    _, results = read(
        b"email,name\na@example.com,0123456789\n", limits=CsvLimits(max_field_bytes=13)
    )

    assert valid(results)[0].fields["name"] == "0123456789"


@pytest.mark.parametrize(
    "data",
    [
        b"email,name\na@example.com,01234567890123\n",
        "email,name\na@example.com,éééééää\n".encode(),  # 7 characters, 14 bytes
        b'email,name\na@example.com,"0123456\n7890123"\n',
    ],
    ids=["ascii", "multi-byte", "quoted-newline"],
)
def test_a_field_over_the_limit_is_rejected(data: bytes) -> None:
    rejected = rejection(data, limits=CsvLimits(max_field_bytes=13))

    assert rejected.code == "field_too_large"
    assert rejected.details["limit"] == 13
    assert rejected.details["line"] in (2, 3)


def test_a_header_cell_over_the_limit_is_rejected() -> None:
    rejected = rejection(b"email,a_very_long_column_name\n", limits=CsvLimits(max_field_bytes=13))

    assert rejected.code == "field_too_large"
    assert rejected.details["line"] == 1


def test_a_field_over_csvs_own_limit_is_rejected() -> None:
    data = b"email,name\na@example.com," + b"x" * 300_000 + b"\n"

    rejected = rejection(data, chunk_bytes=65536)

    assert rejected.code == "field_too_large"
    assert rejected.details["line"] == 2


def test_the_global_csv_field_limit_is_only_raised() -> None:
    before = csv.field_size_limit()

    read(SIMPLE, limits=CsvLimits(max_field_bytes=20))
    assert csv.field_size_limit() == before
    read(SIMPLE, limits=CsvLimits(max_field_bytes=before + 1))
    assert csv.field_size_limit() == before + 1


def test_a_header_at_the_column_limit_is_accepted() -> None:
    recipients, _ = read(b"email,b,c\na@example.com,2,3\n", limits=CsvLimits(max_columns=3))

    assert len(recipients.columns) == 3


def test_a_header_over_the_column_limit_is_rejected() -> None:
    rejected = rejection(b"email,b,c,d\na@example.com,2,3,4\n", limits=CsvLimits(max_columns=3))

    assert rejected.code == "too_many_columns"
    assert rejected.details == {"columns": 4, "limit": 3}


@pytest.mark.parametrize("chunk_bytes", [4, CHUNK_BYTES])
def test_a_file_over_the_size_limit_is_rejected(chunk_bytes: int) -> None:
    data = SIMPLE + b"".join(b"u%d@example.com,U\n" % i for i in range(100))

    rejected = rejection(
        data, limits=CsvLimits(max_file_bytes=len(SIMPLE)), chunk_bytes=chunk_bytes
    )

    assert rejected.code == "file_too_large"
    assert rejected.details["limit"] == len(SIMPLE)


def test_a_file_at_the_size_limit_is_accepted() -> None:
    _, results = read(SIMPLE, limits=CsvLimits(max_file_bytes=len(SIMPLE)))

    assert len(valid(results)) == 2


def test_a_line_with_no_end_in_sight_is_rejected() -> None:
    data = b"email,name\na@example.com," + b"x" * 200 + b"\n"

    rejected = rejection(data, limits=CsvLimits(max_line_chars=100), chunk_bytes=16)

    assert rejected.code == "line_too_long"
    assert rejected.details["line"] == 2


# --- any content, any chunk size --------------------------------------------------------------

cells = st.text(
    st.one_of(
        st.characters(exclude_categories=["Cs", "Cc"]),
        st.sampled_from(['"', ",", ";", "\r", "\n", "\t", " ", "\x85", "\u2028", "\ufeff"]),
    ),
    max_size=12,
)
email_cells = st.one_of(
    cells, st.integers(0, 999).map(lambda n: f"user{n}@example.com"), st.just("a@b.com, c@d.com")
)
records = st.lists(st.tuples(email_cells, cells, cells), min_size=1, max_size=8)


@given(
    rows=records,
    chunk_bytes=st.integers(1, 64),
    line_end=st.sampled_from(["\r\n", "\n", "\r"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
)
def test_any_content_round_trips_for_any_chunk_size(
    rows: list[tuple[str, str, str]], chunk_bytes: int, line_end: str, encoding: str
) -> None:
    buffer = io.StringIO()
    # csv.writer quotes a lone "\r" or "\n" only when it is in the line terminator.
    quoting: Literal[0, 1] = csv.QUOTE_MINIMAL if line_end == "\r\n" else csv.QUOTE_ALL
    writer = csv.writer(buffer, lineterminator=line_end, quoting=quoting)
    writer.writerow(["email", "a", "b"])
    writer.writerows(rows)
    expected = {row: cells for row, cells in enumerate(rows, start=2) if "".join(cells).strip()}
    recipients = RecipientFile(
        io.BytesIO(buffer.getvalue().encode(encoding)), chunk_bytes=chunk_bytes
    )

    if not expected:
        with pytest.raises(FileRejected, match="no recipients"):
            list(recipients.rows())
        return
    results = list(recipients.rows())

    assert [result.row for result in results] == list(expected)
    for result in results:
        email, a, b = expected[result.row]
        if isinstance(result, Recipient):
            assert result.fields == {"email": email.strip(), "a": a, "b": b}
        else:
            assert result.email == email
