"""Erased addresses: the suppression list keeps them only as a keyed hash of the normalised
address, which matches the same address again without revealing it."""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

ERASED_PREFIX = "erased:"
# Every key starts with the prefix, so the tenant's erased entries are one range of the
# primary key: [ERASED_PREFIX, ERASED_PREFIX_END).
ERASED_PREFIX_END = "erased;"
_PURPOSE = b"postroom erased-address v1"


def erased_key(secret_key: bytes, tenant_id: str, email_key: str) -> str:
    """``erased:<hex HMAC-SHA256>`` of one tenant's normalised address (``Address.key``).

    Keyed by a key derived from the server's secret, and the tenant is part of the message,
    so equal addresses of two tenants do not give equal hashes. Changing the server's secret
    makes earlier erased entries match nothing."""
    message = f"{tenant_id}\n{email_key}".encode()
    return ERASED_PREFIX + hmac.digest(_derived(secret_key), message, "sha256").hex()


def is_erased_key(email_key: str) -> bool:
    return email_key.startswith(ERASED_PREFIX)


@lru_cache(maxsize=8)
def _derived(secret_key: bytes) -> bytes:
    # A key of its own, so that no hash here is ever a valid signature elsewhere.
    return hmac.digest(secret_key, _PURPOSE, hashlib.sha256)
