"""The filter of addresses already written: never a false "no", few false "perhaps"."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postroom.ingest.seen import SeenAddresses


@given(st.lists(st.text(), max_size=200), st.lists(st.text(), max_size=200))
def test_an_added_key_is_always_perhaps_there(added: list[str], others: list[str]) -> None:
    seen = SeenAddresses(slots=1 << 10)
    seen.add_all(added)

    assert all(seen.may_have(key) for key in added)
    assert seen.which_may_have(added + others) == [
        key for key in added + others if seen.may_have(key)
    ]


def test_most_keys_never_added_need_no_look_up() -> None:
    seen = SeenAddresses(slots=1 << 20)
    seen.add_all(f"user{i}@example.com" for i in range(50_000))

    new = [f"other{i}@example.org" for i in range(50_000)]
    assert len(seen.which_may_have(new)) < 0.02 * len(new)


def test_an_empty_filter_has_nothing() -> None:
    assert SeenAddresses(slots=1 << 4).which_may_have(["a", "b"]) == []


@pytest.mark.parametrize("slots", [0, 1, 3, 1000])
def test_slots_must_be_a_power_of_two(slots: int) -> None:
    with pytest.raises(ValueError, match="power of two"):
        SeenAddresses(slots=slots)
