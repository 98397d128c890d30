"""API key format: ``pr_<key id>_<secret>``; only a hash of the secret is ever stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "pr"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key_id: str
    secret_hash: str
    plaintext: str


def issue_key() -> IssuedKey:
    """A fresh key: 96-bit id, 256-bit secret."""
    key_id = secrets.token_hex(12)
    secret = secrets.token_urlsafe(32)
    return IssuedKey(key_id, hash_secret(secret), f"{PREFIX}_{key_id}_{secret}")


def hash_secret(secret: str) -> str:
    # The secret carries 256 random bits, so a plain SHA-256 is as strong as a slow KDF here.
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(plaintext: str) -> tuple[str, str] | None:
    """Split a presented key into (key id, secret); None when it is not shaped like one."""
    parts = plaintext.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def claims_to_be_key(plaintext: str) -> bool:
    """Whether a presented credential says it is an API key (``pr_…``), well formed or not."""
    return plaintext.strip().startswith(f"{PREFIX}_")


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
