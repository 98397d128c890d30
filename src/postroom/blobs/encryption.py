"""The encrypted blob format: chunked AES-256-GCM under a per-blob data key, which is stored
wrapped by a storage key in a fixed-size header (so rotation rewrites the header only).

Layout: header (``HEADER_BYTES``), then the plaintext in ``chunk_bytes`` pieces, each sealed
with its own tag. Chunk ``i`` uses nonce ``i`` (each blob has its own data key, so nonces
never repeat under a key) and associated data saying whether it is the last chunk: chunks
moved, dropped, cut short or added after the end all fail authentication. Every blob has at
least one chunk (an empty final one for empty plaintext), and only the last may be short,
so the plaintext size follows from the stored size alone.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from postroom.errors import BlobUnreadable
from postroom.storage_keys import KEY_ID, Keyring, StorageKey

MAGIC = b"\x89PRBLOB\n"  # not text, so no CSV or template from before encryption starts so
VERSION = 1
CHUNK_BYTES = 64 * 1024
TAG_BYTES = 16
_NONCE_BYTES = 12
_HEADER = struct.Struct(">8sBIB32s12s48s")  # magic version chunk id-length id nonce wrapped
HEADER_BYTES = _HEADER.size
_WRAPPED_PART = 8 + 1 + 4 + 1 + 32  # the header bytes the wrapped data key is bound to
_LAST = b"\x01"
_NOT_LAST = b"\x00"


@dataclass(frozen=True, slots=True)
class Header:
    """What the header of an encrypted blob says."""

    key_id: str
    chunk_bytes: int
    wrap_nonce: bytes
    wrapped_key: bytes

    def bound_part(self) -> bytes:
        """The bytes before the wrap nonce, which the wrapped key authenticates."""
        return self.pack()[:_WRAPPED_PART]

    def pack(self) -> bytes:
        key_id = self.key_id.encode()
        return _HEADER.pack(
            MAGIC,
            VERSION,
            self.chunk_bytes,
            len(key_id),
            key_id,
            self.wrap_nonce,
            self.wrapped_key,
        )


def is_encrypted(prefix: bytes) -> bool:
    """Whether a stored blob starting with ``prefix`` is in this format (else: plaintext
    written before encryption existed)."""
    return prefix[: len(MAGIC)] == MAGIC


def read_header(data: bytes) -> Header:
    """The header at the start of ``data``; raises BlobUnreadable if it is not one."""
    if len(data) < HEADER_BYTES or not is_encrypted(data):
        raise BlobUnreadable("The blob's encryption header is cut short or damaged.")
    _magic, version, chunk_bytes, id_length, key_id, nonce, wrapped = _HEADER.unpack_from(data)
    if version != VERSION:
        raise BlobUnreadable(f"The blob is in encryption format {version}, which is unknown.")
    name = key_id[:id_length].decode("ascii", "replace")
    # The wrapped key authenticates the header as packed again from these fields, so any
    # byte that packing would not reproduce (the id's padding) must be refused here.
    is_padded = id_length <= 32 and key_id[id_length:] == bytes(32 - id_length)
    if not (0 < chunk_bytes <= 64 * 1024 * 1024 and KEY_ID.fullmatch(name) and is_padded):
        raise BlobUnreadable("The blob's encryption header is damaged.")
    return Header(name, chunk_bytes, nonce, wrapped)


def seal_header(key: StorageKey, data_key: bytes, chunk_bytes: int = CHUNK_BYTES) -> Header:
    """A header holding ``data_key`` wrapped under ``key``."""
    unwrapped = Header(key.key_id, chunk_bytes, os.urandom(_NONCE_BYTES), b"\0" * 48)
    wrapped = AESGCM(key.secret).encrypt(unwrapped.wrap_nonce, data_key, unwrapped.bound_part())
    return Header(key.key_id, chunk_bytes, unwrapped.wrap_nonce, wrapped)


def open_data_key(header: Header, keyring: Keyring) -> bytes:
    """The blob's data key; raises BlobUnreadable for an unknown key or a damaged header."""
    key = keyring.find(header.key_id)
    if key is None:
        raise BlobUnreadable(
            f"The blob is encrypted under storage key {header.key_id!r}, which is not in "
            "POSTROOM_STORAGE_ENCRYPTION_KEYS.",
            details={"key_id": header.key_id},
        )
    try:
        aead = AESGCM(key.secret)
        return aead.decrypt(header.wrap_nonce, header.wrapped_key, header.bound_part())
    except InvalidTag:
        raise BlobUnreadable(
            "The blob's encryption header failed authentication: it was changed or damaged."
        ) from None


def rewrap(header: Header, keyring: Keyring) -> Header:
    """The same blob's header with its data key wrapped under the keyring's current key."""
    return seal_header(keyring.current, open_data_key(header, keyring), header.chunk_bytes)


def plaintext_bytes(stored_bytes: int, chunk_bytes: int) -> int:
    """The plaintext size of an encrypted blob of ``stored_bytes`` (header included)."""
    body = stored_bytes - HEADER_BYTES
    chunks = max(1, -(-body // (chunk_bytes + TAG_BYTES)))
    return max(0, body - chunks * TAG_BYTES)


def _nonce(index: int) -> bytes:
    return index.to_bytes(_NONCE_BYTES, "big")


class EncryptingWriter:
    """Encrypts what is written to it into ``out``; ``finish`` seals the last chunk."""

    def __init__(self, out: BinaryIO, key: StorageKey, chunk_bytes: int = CHUNK_BYTES) -> None:
        data_key = AESGCM.generate_key(bit_length=256)
        self._out = out
        self._aead = AESGCM(data_key)
        self._chunk_bytes = chunk_bytes
        self._pending = bytearray()
        self._index = 0
        out.write(seal_header(key, data_key, chunk_bytes).pack())

    def write(self, data: bytes) -> None:
        self._pending += data
        size = self._chunk_bytes
        # A full chunk is held back until more follows: only then is it known not to be last.
        while len(self._pending) > size:
            self._seal(bytes(self._pending[:size]), _NOT_LAST)
            del self._pending[:size]

    def finish(self) -> None:
        self._seal(bytes(self._pending), _LAST)
        self._pending.clear()

    def _seal(self, chunk: bytes, last: bytes) -> None:
        self._out.write(self._aead.encrypt(_nonce(self._index), chunk, last))
        self._index += 1


class DecryptingReader(io.RawIOBase):
    """The plaintext of an encrypted blob, decrypted a chunk at a time as it is read.

    ``source`` is positioned just after the header and holds ``body_bytes`` more. A chunk
    that fails authentication raises BlobUnreadable from ``read``.
    """

    def __init__(self, source: BinaryIO, data_key: bytes, chunk_bytes: int, body_bytes: int):
        super().__init__()
        self._source = source
        self._aead = AESGCM(data_key)
        self._sealed_bytes = chunk_bytes + TAG_BYTES
        self._left = body_bytes  # stored bytes not yet read
        self._index = 0
        self._chunk = memoryview(b"")
        self._is_last_read = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._chunk:
            if self._is_last_read:
                return 0
            self._chunk = memoryview(self._next_chunk())
        size = min(len(buffer), len(self._chunk))
        memoryview(buffer).cast("B")[:size] = self._chunk[:size]
        self._chunk = self._chunk[size:]
        return size

    def _next_chunk(self) -> bytes:
        want = min(self._sealed_bytes, self._left)
        sealed = self._source.read(want)
        self._left -= len(sealed)
        self._is_last_read = self._left <= 0
        if len(sealed) < TAG_BYTES:
            raise BlobUnreadable("The blob is cut short: its encrypted data ends early.")
        last = _LAST if self._is_last_read else _NOT_LAST
        try:
            chunk = self._aead.decrypt(_nonce(self._index), sealed, last)
        except InvalidTag:
            raise BlobUnreadable(
                f"Part {self._index + 1} of the blob failed authentication: the stored data "
                "was changed, reordered, cut short or damaged."
            ) from None
        self._index += 1
        return chunk

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()


def open_decrypting(source: BinaryIO, keyring: Keyring, stored_bytes: int) -> BinaryIO:
    """A buffered reader of the plaintext of the encrypted blob ``source`` (at its start)."""
    header = read_header(source.read(HEADER_BYTES))
    data_key = open_data_key(header, keyring)
    body_bytes = stored_bytes - HEADER_BYTES
    raw = DecryptingReader(source, data_key, header.chunk_bytes, body_bytes)
    return io.BufferedReader(raw, buffer_size=header.chunk_bytes)
