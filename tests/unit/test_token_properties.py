"""Properties of the signed tokens in every message: VERP return paths, open and click
tracking, and unsubscribe links round-trip for any message and URL, and a token changed in
any one character is refused."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import example, given, settings
from hypothesis import strategies as st

from postroom.events.tracking import (
    TrackingUrls,
    click_token,
    message_of_open_token,
    open_token,
    target_of_click_token,
)
from postroom.events.unsubscribe import message_of_token, unsubscribe_token
from postroom.events.verp import mac_matches, read_address, verp_address, verp_token
from postroom.signing import sign, verify

BOUNCES = "bounces@example.com"
BASE_URL = "https://mail.example.com"

keys = st.binary(min_size=1, max_size=80)
message_pks = st.integers(1, 10**18 - 1)  # a BIGINT primary key of at most 18 digits
tenant_ids = st.text(min_size=1, max_size=30)
urls = st.one_of(
    st.text(),
    st.builds(
        lambda path, query: f"https://example.com/{path}?{query}",
        st.text(max_size=30),
        st.text(max_size=30),
    ),
)
# Replacements for one character: anything, and the near misses a forger would try
# (neighbouring letters and digits, the separators, padding, non-ASCII look-alikes).
replacement_chars = st.one_of(
    st.characters(),
    st.sampled_from([*"0123456789abczABCZ-_.+=@/ ", "\u212a", "\uff11", "\u0661", "\u00e9"]),
)


def tampered(token: str, change: tuple[int, str, bool]) -> str | None:
    """``token`` with one character replaced (or removed, for an empty replacement) or one
    inserted, at ``position`` modulo its length; None when that leaves it as it was."""
    position, replacement, is_insertion = change
    if is_insertion:
        index = position % (len(token) + 1)
        return token[:index] + replacement + token[index:] if replacement else None
    index = position % len(token)
    changed = token[:index] + replacement + token[index + 1 :]
    return None if changed == token else changed


changes = st.tuples(st.integers(0, 200), replacement_chars | st.just(""), st.booleans())


# --- VERP ---------------------------------------------------------------------------------------


def _verp_message(key: bytes, tenant_id: str, address: str) -> tuple[str, int] | None:
    """What the bounce and mailto-unsubscribe listeners accept: (kind, message) or None."""
    found = read_address(BOUNCES, address)
    if found is None or found.message_pk is None:
        return None
    if not mac_matches(key, tenant_id, found.message_pk, found.mac):
        return None
    return found.kind, found.message_pk


@settings(max_examples=300, deadline=None)
@given(keys, tenant_ids, message_pks, st.booleans())
def test_verp_addresses_round_trip(
    key: bytes, tenant_id: str, message_pk: int, unsubscribe: bool
) -> None:
    address = verp_address(BOUNCES, verp_token(key, tenant_id, message_pk), unsubscribe=unsubscribe)
    kind = "unsubscribe" if unsubscribe else "bounce"

    assert _verp_message(key, tenant_id, address) == (kind, message_pk)
    # Relays may fold the case of the local part: the token is lowercase base32 for that.
    assert _verp_message(key, tenant_id, address.upper()) == (kind, message_pk)
    assert _verp_message(key, tenant_id + "x", address) is None


@settings(max_examples=500, deadline=None)
@given(keys, tenant_ids, message_pks, st.booleans(), changes)
@example(
    b"k", "ten_1", 7, False, (8, "\u212a", False)
)  # KELVIN SIGN for the "k" of 7-oiqqg2kcmrxlv4ly
def test_a_verp_token_changed_in_one_character_is_refused(
    key: bytes,
    tenant_id: str,
    message_pk: int,
    unsubscribe: bool,
    change: tuple[int, str, bool],
) -> None:
    token = verp_token(key, tenant_id, message_pk)
    changed = tampered(token, change)
    # ASCII case is the one change allowed: relays fold it, and the token is read in lowercase.
    if changed is None or (changed.isascii() and changed.lower() == token):
        return
    address = verp_address(BOUNCES, changed, unsubscribe=unsubscribe)

    assert _verp_message(key, tenant_id, address) is None


# --- open and click tracking ----------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(keys, message_pks, urls)
def test_tracking_tokens_round_trip_for_any_message_and_url(
    key: bytes, message_pk: int, url: str
) -> None:
    assert message_of_open_token(key, open_token(key, message_pk)) == message_pk
    assert target_of_click_token(key, click_token(key, message_pk, url)) == (message_pk, url)
    # The batch form used by the sender makes the same tokens.
    urls_for_key = TrackingUrls(key, BASE_URL)
    assert urls_for_key.pixel(message_pk) == f"{BASE_URL}/t/o/{open_token(key, message_pk)}.gif"
    assert urls_for_key.click(message_pk, url) == (
        f"{BASE_URL}/t/c/{click_token(key, message_pk, url)}"
    )


@settings(max_examples=500, deadline=None)
@given(keys, message_pks, changes)
def test_an_open_token_changed_in_one_character_is_refused(
    key: bytes, message_pk: int, change: tuple[int, str, bool]
) -> None:
    _assert_refused(message_of_open_token, key, open_token(key, message_pk), change)


@settings(max_examples=500, deadline=None)
@given(keys, message_pks, urls, changes)
def test_a_click_token_changed_in_one_character_is_refused(
    key: bytes, message_pk: int, url: str, change: tuple[int, str, bool]
) -> None:
    _assert_refused(target_of_click_token, key, click_token(key, message_pk, url), change)


# --- unsubscribe ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(keys, message_pks)
def test_unsubscribe_tokens_round_trip(key: bytes, message_pk: int) -> None:
    assert message_of_token(key, unsubscribe_token(key, message_pk)) == message_pk
    assert message_of_token(key + b"x", unsubscribe_token(key, message_pk)) is None


@settings(max_examples=500, deadline=None)
@given(keys, message_pks, changes)
@example(b"k", 42, (5, "\u00e9", False))  # a non-ASCII character in the signature
@example(b"k", 42, (0, "\u0664", False))  # ARABIC-INDIC DIGIT FOUR: a digit to str.isdigit()
def test_an_unsubscribe_token_changed_in_one_character_is_refused(
    key: bytes, message_pk: int, change: tuple[int, str, bool]
) -> None:
    _assert_refused(message_of_token, key, unsubscribe_token(key, message_pk), change)


@settings(max_examples=200, deadline=None)
@given(keys, st.text(max_size=60), st.lists(st.text(max_size=10), max_size=4))
@example(b"k", "\u00e9", [])
def test_verify_accepts_the_signature_and_refuses_any_other_string(
    key: bytes, signature: str, parts: list[str]
) -> None:
    # Presigned upload URLs, unsubscribe links and console sessions check signatures with this.
    assert verify(key, sign(key, *parts), *parts) is True
    assert verify(key, signature, *parts) is (signature == sign(key, *parts))


def _assert_refused(
    read: Callable[[bytes, str], object], key: bytes, token: str, change: tuple[int, str, bool]
) -> None:
    changed = tampered(token, change)
    if changed is None:
        return
    assert read(key, changed) is None, changed
