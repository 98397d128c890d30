"""VERP return paths: a token names one message of one tenant and cannot be forged."""

from __future__ import annotations

import string

import pytest

from postroom.config import MAX_BOUNCE_LOCAL, load_settings
from postroom.errors import ConfigError
from postroom.events.verp import mac_matches, read_address, verp_address, verp_token

KEY = b"k" * 32
BOUNCES = "bounces@example.com"


def _accepted(address: str, tenant: str = "ten_1") -> int | None:
    found = read_address(BOUNCES, address)
    if found is None or found.message_pk is None:
        return None
    return found.message_pk if mac_matches(KEY, tenant, found.message_pk, found.mac) else None


def test_round_trip_names_the_message_and_kind() -> None:
    token = verp_token(KEY, "ten_1", 1234)
    bounce = verp_address(BOUNCES, token)
    assert bounce.startswith("bounces+1234-") and bounce.endswith("@example.com")
    assert _accepted(bounce) == 1234
    unsub = read_address(BOUNCES, verp_address(BOUNCES, token, unsubscribe=True))
    assert unsub is not None and unsub.kind == "unsubscribe" and unsub.message_pk == 1234
    # Relays may fold the case of the local part; the token survives it.
    assert _accepted(bounce.upper()) == 1234
    assert read_address(BOUNCES, "<Bounces@Example.com>") is not None


def test_another_tenant_or_message_does_not_match() -> None:
    token = verp_token(KEY, "ten_1", 1234)
    assert _accepted(verp_address(BOUNCES, token), tenant="ten_2") is None
    mac = token.partition("-")[2]
    assert _accepted(f"bounces+1235-{mac}@example.com") is None
    assert read_address(BOUNCES, verp_address("bounces@other.example", token)) is None
    assert read_address(BOUNCES, f"other+{token}@example.com") is None


def test_every_single_character_change_is_refused() -> None:
    address = verp_address(BOUNCES, verp_token(KEY, "ten_1", 98765))
    local = address.partition("@")[0]
    alphabet = string.ascii_lowercase + string.digits + "+-"
    for i in range(len("bounces+"), len(local)):
        for char in alphabet:
            if char == local[i]:
                continue
            changed = local[:i] + char + local[i + 1 :] + "@example.com"
            assert _accepted(changed) is None, changed
    assert _accepted(local[:-1] + "é@example.com") is None
    assert _accepted(local.replace("9", "٩", 1) + "@example.com") is None  # a non-ASCII digit
    for i in range(len("bounces+"), len(local)):  # dropping a character
        assert _accepted(local[:i] + local[i + 1 :] + "@example.com") is None


def test_local_part_fits_in_64() -> None:
    longest_local = "b" * MAX_BOUNCE_LOCAL
    address = verp_address(f"{longest_local}@example.com", verp_token(KEY, "t", 10**18 - 1))
    unsub = verp_address(
        f"{longest_local}@example.com", verp_token(KEY, "t", 10**18 - 1), unsubscribe=True
    )
    assert len(address.partition("@")[0]) <= 64
    assert len(unsub.partition("@")[0]) == 64
    assert _accepted(address) is None  # wrong bounce address for this reader, but parsable:
    assert read_address(f"{longest_local}@example.com", unsub) is not None


@pytest.mark.parametrize(
    "bad",
    [
        "Bounces <bounces@example.com>",
        "bounces+x@example.com",
        "bounces@localhost",
        "no-at-sign",
        "b" * (MAX_BOUNCE_LOCAL + 1) + "@example.com",
    ],
)
def test_bad_bounce_address_fails_start_up(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(bounce_address=bad)
    assert "POSTROOM_BOUNCE_ADDRESS" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_plain_bounce_address_is_accepted() -> None:
    assert load_settings(bounce_address=BOUNCES).bounce_address == BOUNCES
