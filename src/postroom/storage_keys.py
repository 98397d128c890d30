"""Storage encryption keys as settings write them: ``id:base64,id:base64``, the first one
current (new blobs are written under it), the others kept for reading older blobs."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field

KEY_BYTES = 32  # AES-256
KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,32}")


@dataclass(frozen=True, slots=True)
class StorageKey:
    key_id: str
    secret: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Keyring:
    """The keys a blob store may use: ``current`` for writing, any of them for reading."""

    keys: tuple[StorageKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a keyring needs at least one key")

    @property
    def current(self) -> StorageKey:
        return self.keys[0]

    def find(self, key_id: str) -> StorageKey | None:
        return next((key for key in self.keys if key.key_id == key_id), None)

    def with_reading_key(self, key: StorageKey) -> Keyring:
        """This keyring, also able to read blobs under ``key`` unless one of its id is here."""
        return self if self.find(key.key_id) else Keyring((*self.keys, key))


def parse_keyring(text: str) -> Keyring:
    """The keys of a comma-separated ``id:base64`` list. Raises ValueError with a readable
    message that never quotes key material."""
    keys: list[StorageKey] = []
    for position, item in enumerate(text.split(","), start=1):
        key_id, colon, encoded = item.strip().partition(":")
        if not colon or not KEY_ID.fullmatch(key_id):
            raise ValueError(
                f"entry {position} is not id:base64 with an id of 1 to 32 letters, digits "
                "or ._- (e.g. k2025:<32 random bytes in base64>)"
            )
        try:
            secret = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error:
            raise ValueError(f"key {key_id!r} is not valid base64") from None
        if len(secret) != KEY_BYTES:
            raise ValueError(
                f"key {key_id!r} is {len(secret)} bytes; it must be {KEY_BYTES} random bytes "
                "(postroom storage new-key makes one)"
            )
        if any(key.key_id == key_id for key in keys):
            raise ValueError(f"key id {key_id!r} appears twice")
        keys.append(StorageKey(key_id, secret))
    return Keyring(tuple(keys))


def new_key_entry(key_id: str) -> str:
    """A fresh ``id:base64`` entry of 32 random bytes."""
    if not KEY_ID.fullmatch(key_id):
        raise ValueError("a key id is 1 to 32 letters, digits or ._-")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"
