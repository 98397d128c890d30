"""Column names: header cells to unique identifiers, and finding the email column."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postroom.errors import FileRejected
from postroom.files.headers import (
    EMAIL_COLUMN_CANDIDATES,
    find_email_column,
    identifier_for,
    normalise_headers,
)


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("First Name", "first_name"),
        ("E-mail", "e_mail"),
        (" Email Address ", "email_address"),
        ("E-Mail Address", "e_mail_address"),
        ("Prénom", "prénom"),
        ("Pre\u0301nom", "prénom"),  # decomposed accent composes instead of splitting the word
        ("\ufeffEmail", "email"),
        ("\u200bEmail\u200b", "email"),
        ("EMAIL", "email"),
        ("\uff25\uff2d\uff21\uff29\uff2c", "email"),  # full-width letters
        ("नाम", "नाम"),  # combining vowel signs are kept
        ("Straße", "straße"),
        ("  zip / postal code (5) ", "zip_postal_code_5"),
        ("already_snake__case", "already_snake__case"),
        ("__private__", "private"),
        ("1st line", "col_1st_line"),
        ("2", "col_2"),
        ("½ price", "col_1_2_price"),
        ("Amount (€)", "amount"),
        ("---", ""),
        ("", ""),
        ("   ", ""),
    ],
)
def test_header_cells_become_identifiers(raw: str, name: str) -> None:
    assert identifier_for(raw) == name


def test_empty_headers_are_named_by_position() -> None:
    names, warnings = normalise_headers(["Email", "", "  ", "!!"])

    assert names == ["email", "column_2", "column_3", "column_4"]
    assert warnings == []


def test_duplicates_get_numbered_suffixes_and_a_warning_naming_the_originals() -> None:
    names, warnings = normalise_headers(["Email", "Name", "email ", "E MAIL", "EMAIL"])

    assert names == ["email", "name", "email_2", "e_mail", "email_3"]
    assert len(warnings) == 1
    assert "'Email'" in warnings[0]
    assert "'email '" in warnings[0]
    assert "'EMAIL'" in warnings[0]
    assert "email, email_2, email_3" in warnings[0]


def test_suffixes_never_collide_with_another_column() -> None:
    names, warnings = normalise_headers(["name", "Name", "name_2", "", "column_4"])

    assert names == ["name", "name_3", "name_2", "column_4", "column_4_2"]
    assert len(names) == len(set(names))
    assert len(warnings) == 2


@given(st.lists(st.text(max_size=12), max_size=30))
def test_any_header_gives_unique_identifiers(raw: list[str]) -> None:
    names, _ = normalise_headers(raw)

    assert len(names) == len(raw)
    assert len(set(names)) == len(names)
    assert all(name.isidentifier() for name in names)


@pytest.mark.parametrize(
    ("columns", "email_column"),
    [
        (["name", "email"], "email"),
        (["mail", "e_mail", "email_address", "email"], "email"),
        (["mail", "e_mail", "email_address"], "email_address"),
        (["mail", "e_mail"], "e_mail"),
        (["name", "mail"], "mail"),
    ],
)
def test_the_first_candidate_present_is_the_email_column(
    columns: list[str], email_column: str
) -> None:
    assert find_email_column(columns, None) == email_column


@pytest.mark.parametrize(
    ("requested", "email_column"),
    [("E-Mail Address", "e_mail_address"), ("e_mail_address", "e_mail_address"), ("Work", "work")],
)
def test_a_requested_column_is_normalised_like_a_header(requested: str, email_column: str) -> None:
    columns = ["email", "e_mail_address", "work"]

    assert find_email_column(columns, requested) == email_column


def test_a_requested_column_that_is_absent_is_rejected_with_the_columns_listed() -> None:
    with pytest.raises(FileRejected) as raised:
        find_email_column(["email", "name"], "Work Email")

    assert raised.value.code == "no_email_column"
    assert "'Work Email'" in raised.value.message
    assert "email, name" in raised.value.message
    assert raised.value.details["columns"] == ["email", "name"]


def test_an_empty_request_is_rejected() -> None:
    with pytest.raises(FileRejected) as raised:
        find_email_column(["email"], "  ")

    assert raised.value.code == "no_email_column"


def test_no_candidate_is_rejected_naming_the_candidates() -> None:
    with pytest.raises(FileRejected) as raised:
        find_email_column(["name", "e_mail_address"], None)

    assert raised.value.code == "no_email_column"
    assert all(candidate in raised.value.message for candidate in EMAIL_COLUMN_CANDIDATES)
    assert "name, e_mail_address" in raised.value.message


def test_a_long_column_list_is_shortened_in_the_message_but_not_the_details() -> None:
    columns = [f"c{i}" for i in range(50)]

    with pytest.raises(FileRejected) as raised:
        find_email_column(columns, None)

    assert "and 30 more" in raised.value.message
    assert raised.value.details["columns"] == columns
