"""A message's fields: the quick encoder writes exactly what the json module writes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postroom.ingest.fields import FieldsEncoder


def reference(columns: list[str], cells: list[str]) -> str:
    fields = dict(zip(columns, cells, strict=True))
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


@given(
    st.lists(st.text(), min_size=1, max_size=8, unique=True).flatmap(
        lambda columns: st.tuples(
            st.just(columns), st.lists(st.text(), min_size=len(columns), max_size=len(columns))
        )
    )
)
def test_the_encoding_is_the_json_modules_for_any_text(row: tuple[list[str], list[str]]) -> None:
    columns, cells = row

    encoded = FieldsEncoder(columns).encode(cells)

    assert encoded == reference(columns, cells)
    assert json.loads(encoded) == dict(zip(columns, cells, strict=True))


def test_quotes_backslashes_line_ends_and_non_ascii_round_trip() -> None:
    columns = ["email", "note", "city"]
    cells = ["a@example.com", 'say "hi"\\\r\n\t\x00\u2028', "Zürich ✓"]

    assert FieldsEncoder(columns).encode(cells) == reference(columns, cells)


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="expected 2 cells"):
        FieldsEncoder(["a", "b"]).encode(["only one"])


def test_repeated_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        FieldsEncoder(["a", "a"])
