"""VERP return paths: ``bounces+<token>@example.com`` names one message (and through it its
tenant) so a bounce that comes back to it says which message it is about; ``bounces+u-<token>``
is the same message's mailto unsubscribe address. The token is ``<message id>-<MAC>``, the MAC
an HMAC over tenant and message, truncated to 80 bits and written in lowercase base32 so that a
relay that folds the case of local parts does not break it."""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass
from typing import Literal

from postroom.signing import mac

MAC_CHARS = 16  # 16 base32 characters: 80 bits
MAX_PK_DIGITS = 18
UNSUBSCRIBE_PREFIX = "u-"

_PURPOSE = "verp"
_MAC = re.compile(f"[a-z2-7]{{{MAC_CHARS}}}")


def verp_mac(key: bytes, tenant_id: str, message_pk: int) -> str:
    digest = mac(key, _PURPOSE, tenant_id, str(message_pk))[: MAC_CHARS * 5 // 8]
    return base64.b32encode(digest).decode().lower()


def verp_token(key: bytes, tenant_id: str, message_pk: int) -> str:
    return f"{message_pk}-{verp_mac(key, tenant_id, message_pk)}"


def verp_address(bounce_address: str, token: str, *, unsubscribe: bool = False) -> str:
    """``bounces@example.com`` and a token make ``bounces+<token>@example.com``."""
    local, _, domain = bounce_address.rpartition("@")
    prefix = UNSUBSCRIBE_PREFIX if unsubscribe else ""
    return f"{local}+{prefix}{token}@{domain}"


@dataclass(frozen=True, slots=True)
class VerpAddress:
    """What an address at the bounce domain is: the bare bounce address, or a message's bounce
    or unsubscribe address (not yet checked against its tenant: see :func:`mac_matches`)."""

    kind: Literal["bare", "bounce", "unsubscribe"]
    message_pk: int | None = None
    mac: str = ""


def read_address(bounce_address: str, address: str) -> VerpAddress | None:
    """Which of our addresses ``address`` is, or None if it is not one of them (another
    domain, another mailbox, a malformed token)."""
    local, _, domain = bounce_address.lower().rpartition("@")
    candidate = address.strip().strip("<>")
    if not candidate.isascii():
        # Ours are all ASCII, and lower() would fold look-alikes into them (KELVIN SIGN to "k").
        return None
    candidate = candidate.lower()
    their_local, at, their_domain = candidate.rpartition("@")
    if not at or their_domain != domain:
        return None
    if their_local == local:
        return VerpAddress("bare")
    base, plus, token = their_local.partition("+")
    if not plus or base != local:
        return None
    kind: Literal["bounce", "unsubscribe"] = "bounce"
    if token.startswith(UNSUBSCRIBE_PREFIX):
        kind, token = "unsubscribe", token[len(UNSUBSCRIBE_PREFIX) :]
    pk, dash, token_mac = token.partition("-")
    if not dash or not pk.isascii() or not pk.isdigit() or len(pk) > MAX_PK_DIGITS:
        return None
    if not _MAC.fullmatch(token_mac):
        return None
    if pk != str(int(pk)):  # no leading zeros: one spelling per message
        return None
    return VerpAddress(kind, int(pk), token_mac)


def mac_matches(key: bytes, tenant_id: str, message_pk: int, given: str) -> bool:
    """Constant-time check that ``given`` is the MAC made for this tenant's message."""
    given = given.lower()
    return given.isascii() and hmac.compare_digest(verp_mac(key, tenant_id, message_pk), given)
