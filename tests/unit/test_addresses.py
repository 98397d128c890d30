"""Recipient addresses: the cell rules, and the quick path agreeing with the full validator."""

from __future__ import annotations

import email_validator
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from postroom.files.addresses import (
    Address,
    AddressProblem,
    check_address,
    check_common_address,
    validate_address,
)


@pytest.mark.parametrize(
    ("raw", "email", "key"),
    [
        ("jane@example.com", "jane@example.com", "jane@example.com"),
        ("  jane@example.com\t", "jane@example.com", "jane@example.com"),
        ("\xa0jane@example.com\xa0", "jane@example.com", "jane@example.com"),
        ("\u200bjane@example.com\ufeff", "jane@example.com", "jane@example.com"),
        ("Jane.Doe@Example.COM", "Jane.Doe@example.com", "jane.doe@example.com"),
        ("o'brien+news@mail.example.co.uk", "o'brien+news@mail.example.co.uk", None),
        ("INFO@example.com", "info@example.com", "info@example.com"),  # RFC 2142 name
        ("Postmaster@example.com", "postmaster@example.com", None),
        ("user@bücher.de", "user@bücher.de", "user@bücher.de"),
        ("user@BÜCHER.de", "user@bücher.de", "user@bücher.de"),
        ("user@xn--bcher-kva.de", "user@bücher.de", "user@bücher.de"),
        ("josé@example.com", "josé@example.com", None),
        ("a!#$*/?^`{|}~@example.com", "a!#$*/?^`{|}~@example.com", None),
    ],
)
def test_valid_addresses_are_normalised(raw: str, email: str, key: str | None) -> None:
    found = check_address(raw)

    assert isinstance(found, Address)
    assert found.email == email
    assert found.key == (key or email.lower())


def test_idn_domain_keeps_unicode_and_exposes_ascii_form() -> None:
    found = check_address("user@bücher.de")

    assert isinstance(found, Address)
    assert found.ascii_email == "user@xn--bcher-kva.de"


def test_unicode_local_part_has_no_ascii_form() -> None:
    found = check_address("josé@example.com")

    assert isinstance(found, Address)
    assert found.ascii_email is None


def test_uppercase_duplicates_share_a_key() -> None:
    first, second = check_address("Bob@Example.com"), check_address("bob@EXAMPLE.COM")

    assert isinstance(first, Address)
    assert isinstance(second, Address)
    assert first.key == second.key == "bob@example.com"
    assert first.email == "Bob@example.com"  # the address itself keeps its local-part case


@pytest.mark.parametrize("raw", ["", "   ", "\t\r\n", "\xa0", "\u200b", "\ufeff \xa0"])
def test_empty_cells_are_missing(raw: str) -> None:
    assert check_address(raw) == AddressProblem("missing_email", "The email address is empty.")


@pytest.mark.parametrize(
    "raw",
    [
        "a@example.com, b@example.com",
        "a@example.com;b@example.com",
        "a@example.com b@example.com",
        "a@example.com\nb@example.com",
        "a@example.com\tb@example.com",
        "Ann <a@example.com>, Bob <b@example.com>",
        "a@b@example.com",
        "a@example.comb@example.com",
    ],
)
def test_several_addresses_in_a_cell_are_never_split(raw: str) -> None:
    found = check_address(raw)

    assert isinstance(found, AddressProblem)
    assert found.reason == "multiple_addresses"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("plainaddress", "must have an @-sign"),
        ("@example.com", "something before the @-sign"),
        ("jane@", "something after the @-sign"),
        ("jane..doe@example.com", "two periods in a row"),
        (".jane@example.com", "cannot start with a period"),
        ("jane@localhost", "should have a period"),
        ("jane@example.invalid", "special-use or reserved"),
        ("jane@-example.com", "hyphen"),
        ("jane@exa_mple.com", "invalid characters"),
        ("Jane <jane@example.com>", "display name"),
        ('"jane doe"@example.com', "Quoting"),
        ("jane@[192.0.2.1]", "bracketed IP address"),
        ("jane@example.com,", "invalid characters"),  # one address and a stray separator
        ("jane\uff20example.com", "full-width"),
        ("a" * 250 + "@example.com", "too long"),
        ("jane@" + "a" * 64 + ".com", "so many characters"),
    ],
)
def test_invalid_addresses_carry_the_validators_message(raw: str, fragment: str) -> None:
    found = check_address(raw)

    assert isinstance(found, AddressProblem)
    assert found.reason == "invalid_email"
    assert fragment in found.detail


def test_a_cell_with_an_at_sign_only_inside_quotes_is_one_address() -> None:
    found = check_address('"a@b"@example.com')

    assert isinstance(found, AddressProblem)
    assert found.reason == "invalid_email"  # quoted local parts are not accepted, but not split


def test_an_invalid_domain_gives_the_same_message_every_time() -> None:
    # The quick path caches the domain's verdict; a rejected domain must still get the
    # validator's own message, not a cached stand-in.
    first = check_address("one@example.local")
    second = check_address("two@example.local")

    assert isinstance(first, AddressProblem)
    assert first == second
    assert first.detail == validate_address("one@example.local").detail  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("setting", "raw"),
    [
        ("ALLOW_DISPLAY_NAME", "Jane <jane@example.com>"),
        ("ALLOW_QUOTED_LOCAL", '"jane doe"@example.com'),
        ("TEST_ENVIRONMENT", "jane@example.test"),
        ("ALLOW_DOMAIN_LITERAL", "jane@[192.0.2.1]"),
    ],
)
def test_the_validators_module_settings_do_not_change_the_verdict(
    monkeypatch: pytest.MonkeyPatch, setting: str, raw: str
) -> None:
    # Every option is passed explicitly, so the cached domain verdicts and the validator
    # cannot drift apart when something else in the process changes a module default.
    monkeypatch.setattr(email_validator, setting, True)

    found = check_address(raw)

    assert isinstance(found, AddressProblem)
    assert found.reason == "invalid_email"


def test_quick_path_declines_what_it_does_not_know() -> None:
    assert check_common_address("josé@example.com") is None
    assert check_common_address("user@bücher.de") is None
    assert check_common_address("a!b@example.com") is None
    assert check_common_address("jane@localhost") is None
    assert check_common_address("jane@example.com") == Address(
        "jane@example.com", "jane@example.com", "jane@example.com"
    )


# Inputs near the edges of the quick path: the characters it takes and the ones it must not,
# the domains the validator treats specially, and lengths around the 254-byte limit.
_LOCAL_ALPHABET = "aZ09._%+'&=-!#$*/?^`{|}~\"\\ (),:;<>@[]\xe9\u0301\u200b"
_LABELS = [
    "example",
    "com",
    "Co",
    "xn--bcher-kva",
    "xn--zz",
    "ab--cd",
    "a-b",
    "-ab",
    "ab-",
    "123",
    "c0m",
    "localhost",
    "local",
    "test",
    "invalid",
    "onion",
    "arpa",
    "a" * 63,
    "b" * 64,
    "bücher",
    "",
]
_NAMES = ["info", "INFO", "Postmaster", "webmaster", "noc", "jane", "Jane.Doe", "a" * 64, "x" * 200]

locals_ = st.one_of(st.sampled_from(_NAMES), st.text(_LOCAL_ALPHABET, max_size=70))
domains = st.lists(st.sampled_from(_LABELS), min_size=1, max_size=5).map(".".join)
addresses = st.one_of(
    st.builds(lambda local, domain: f"{local}@{domain}", locals_, domains),
    st.text(_LOCAL_ALPHABET, max_size=40),
)


def _validator_verdict(text: str) -> Address | None:
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return None
    return Address(result.normalized, result.normalized.lower(), result.ascii_email)


@settings(max_examples=500)
@given(addresses)
@example("jane@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 57)
@example("x" * 190 + "@" + "a" * 63 + ".com")
@example("Info@xn--bcher-kva.de")
def test_quick_path_never_accepts_what_the_validator_rejects(text: str) -> None:
    quick = check_common_address(text)
    if quick is not None:
        assert quick == _validator_verdict(text)


@given(addresses)
def test_check_address_agrees_with_the_validator_on_single_addresses(text: str) -> None:
    text = text.strip()
    assume(text and text == text.strip("\u200b\ufeff"))
    found = check_address(text)
    assume(not (isinstance(found, AddressProblem) and found.reason == "multiple_addresses"))
    verdict = _validator_verdict(text)

    if verdict is None:
        assert isinstance(found, AddressProblem)
        assert found.reason == "invalid_email"
    else:
        assert found == verdict


@settings(max_examples=500)
@given(st.text(min_size=1).filter(lambda text: "@" not in text))
@example("broken19.example.com")
@example('"quoted"')
@example("Name <a.example>")
@example("user\uff20example.com")
@example("user\ufe6bexample.com")
def test_a_cell_without_an_at_sign_gets_the_validators_message(text: str) -> None:
    text = text.strip().strip("\u200b\ufeff").strip()
    assume(text and len(text) <= 254)
    found = check_address(text)
    try:
        validate_address_directly(text)
    except EmailNotValidError as error:
        assert found == AddressProblem("invalid_email", str(error))
    else:
        raise AssertionError(f"the validator accepted {text!r}")


def validate_address_directly(text: str) -> None:
    validate_email(text, check_deliverability=False, allow_smtputf8=True)
