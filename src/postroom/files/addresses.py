"""Recipient addresses: a spreadsheet cell to a normalised address, or why it is not one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from email_validator import EmailNotValidError, ValidatedEmail, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES, EMAIL_MAX_LENGTH


class Address(NamedTuple):
    """A valid address: ``email`` as the validator normalises it, ``key`` for finding duplicates.

    ``ascii_email`` is the all-ASCII form (IDNA domain) when the local part allows one. A named
    tuple, since one is made for every row of a recipient file (cheaper than a dataclass).
    """

    email: str
    key: str
    ascii_email: str | None = None


@dataclass(frozen=True, slots=True)
class AddressProblem:
    """Why a cell is not one valid address: a ``reason`` code and a sentence for the user."""

    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class _Domain:
    name: str  # as the validator normalises it (Unicode for IDNA domains)
    ascii_name: str
    longest_bytes: int  # of the three spellings whose address length the validator checks


# Characters trimmed besides whitespace (str.strip() already covers NBSP): pasted addresses
# carry zero-width spaces and byte-order marks that the validator would call unsafe.
_INVISIBLE = "\u200b\ufeff"

# The quick path only takes addresses that are plainly valid: a dot-atom local part from a
# subset of RFC 5322 atext, which the validator returns unchanged (bar the RFC 2142 names it
# lower-cases), and an ASCII domain whose verdict is the validator's own, cached per domain.
# The domain pattern only keeps the split at the one "@" unambiguous. Possessive quantifiers,
# since nothing here need be given back, make the match a little faster.
_ATEXT = r"[A-Za-z0-9_%+'&=\-]"
_COMMON_ADDRESS = re.compile(rf"({_ATEXT}++(?:\.{_ATEXT}++)*+)@([A-Za-z0-9.\-]++)")
_QUOTED_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_CASE_INSENSITIVE_NAMES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)
_LONGEST_CASE_INSENSITIVE_NAME = max(map(len, _CASE_INSENSITIVE_NAMES))
_LOCAL_FOR_DOMAIN_CHECK = "a"

# A cell with none of these characters has no "@" for the validator to split at: its first
# step, splitting off the domain, then always fails with this message. Answering it here
# spares the validator's per-character Unicode work (about 60 us a cell).
_AT_SIGN_OR_SPLIT_HINT = re.compile('[@<"\uff20\ufe6b]')
_NO_AT_SIGN = AddressProblem("invalid_email", "An email address must have an @-sign.")
_MISSING = AddressProblem("missing_email", "The email address is empty.")
_SEVERAL = AddressProblem(
    "multiple_addresses",
    "The cell holds more than one address; put each recipient on a row of its own.",
)


def check_address(raw: str) -> Address | AddressProblem:
    """Check one cell: a normalised Address, or an AddressProblem.

    Reasons: ``missing_email`` (empty after trimming), ``multiple_addresses`` (more than one
    "@" outside quotes: a cell is never split into two recipients) and ``invalid_email``
    (the validator's message is the detail). Deliverability (DNS) is not checked.
    """
    text = raw.strip()
    if not text:
        return _MISSING
    found = check_common_address(text)
    if found is not None:
        return found
    text = text.strip(_INVISIBLE).strip()
    if not text:
        return _MISSING
    if _QUOTED_STRING.sub("", text).count("@") > 1:
        return _SEVERAL
    if len(text) > EMAIL_MAX_LENGTH:
        # Longer than any valid address can be; spare the validator's per-character work.
        return AddressProblem(
            "invalid_email",
            f"The email address is too long ({len(text)} characters; at most "
            f"{EMAIL_MAX_LENGTH} bytes are allowed).",
        )
    if _AT_SIGN_OR_SPLIT_HINT.search(text) is None:
        return _NO_AT_SIGN
    return validate_address(text)


def check_common_address(text: str) -> Address | None:
    """The quick path: the same Address the validator would give, or None to ask the validator.

    ``text`` must already be trimmed. It never accepts what the validator rejects, and it
    returns None for anything unusual (non-ASCII, quotes, rare characters, over-long).
    """
    match = _COMMON_ADDRESS.fullmatch(text)
    if match is None:
        return None
    local, domain_part = match.groups()
    domain = _checked_domain(domain_part)
    if domain is None or len(local) + 1 + domain.longest_bytes > EMAIL_MAX_LENGTH:
        return None
    if len(local) <= _LONGEST_CASE_INSENSITIVE_NAME and local.lower() in _CASE_INSENSITIVE_NAMES:
        local = local.lower()
    email = f"{local}@{domain.name}"
    return Address(email, email.lower(), f"{local}@{domain.ascii_name}")


def validate_address(text: str) -> Address | AddressProblem:
    """The full validator's verdict on one trimmed address (no multiple-address check)."""
    try:
        result = _validated(text)
    except EmailNotValidError as error:
        return AddressProblem("invalid_email", str(error))
    return Address(result.normalized, result.normalized.lower(), result.ascii_email)


def _validated(text: str) -> ValidatedEmail:
    # Every option is pinned so that a module global changed elsewhere (for instance
    # email_validator.TEST_ENVIRONMENT) cannot make the cached domains and the validator disagree.
    return validate_email(
        text,
        check_deliverability=False,
        allow_smtputf8=True,
        allow_empty_local=False,
        allow_quoted_local=False,
        allow_domain_literal=False,
        allow_display_name=False,
        strict=False,
        test_environment=False,
        globally_deliverable=True,
    )


@lru_cache(maxsize=8192)
def _checked_domain(domain_part: str) -> _Domain | None:
    """The validator's verdict on a domain, asked once per spelling of it."""
    # The domain checks do not depend on the local part, so a one-letter one stands in for all;
    # the length of the real address is checked by the caller.
    try:
        result = _validated(f"{_LOCAL_FOR_DOMAIN_CHECK}@{domain_part}")
    except EmailNotValidError:
        return None  # the caller asks the validator again, for the message
    longest = max(len(domain_part), len(result.domain.encode()), len(result.ascii_domain))
    return _Domain(result.domain, result.ascii_domain, longest)
