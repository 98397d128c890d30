"""COPY's text format for bulk inserts on PostgreSQL: escaping and value forms."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from postroom.db.bulk import copy_text


def unescape_line(line: str) -> list[str | None]:
    """How PostgreSQL reads one line of COPY text (the escapes copy_text writes)."""
    values: list[str | None] = []
    for raw in line.split("\t"):
        if raw == "\\N":
            values.append(None)
            continue
        out, i = [], 0
        while i < len(raw):
            if raw[i] == "\\":
                out.append({"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}[raw[i + 1]])
                i += 2
            else:
                out.append(raw[i])
                i += 1
        values.append("".join(out))
    return values


def test_plain_values_are_written_as_they_are() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    text = copy_text([("c1", 2, "a@x.io", at, None, True), ("c1", 3, "b@x.io", at, None, False)])

    assert text == (
        "c1\t2\ta@x.io\t2026-01-02T03:04:05+00:00\t\\N\tt\n"
        "c1\t3\tb@x.io\t2026-01-02T03:04:05+00:00\t\\N\tf\n"
    )


def test_tabs_line_ends_and_backslashes_are_escaped() -> None:
    rows = [("a\tb", 'x\\"y\r\nz'), ("plain", "\\N")]

    lines = copy_text(rows).split("\n")

    assert lines[-1] == ""
    assert [unescape_line(line) for line in lines[:-1]] == [list(row) for row in rows]


def test_a_column_of_one_repeated_value_is_escaped_too() -> None:
    assert copy_text([("a\tb", 1), ("a\tb", 2)]) == "a\\tb\t1\na\\tb\t2\n"


def test_no_rows_is_no_text() -> None:
    assert copy_text([]) == ""


@given(st.lists(st.tuples(st.text(), st.integers(), st.none() | st.text()), min_size=1))
def test_every_row_reads_back_as_written(rows: list[tuple[str, int, str | None]]) -> None:
    lines = copy_text(rows).split("\n")[:-1]

    assert len(lines) == len(rows)
    for line, (text, number, maybe) in zip(lines, rows, strict=True):
        assert unescape_line(line) == [text, str(number), maybe]
