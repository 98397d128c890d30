"""The encrypted blob format and the local store on top of it: round trips of any size,
sizes without decrypting, and every kind of damage refused as BlobUnreadable."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postroom.blobs import encryption
from postroom.blobs.encryption import HEADER_BYTES, TAG_BYTES
from postroom.blobs.local import LocalBlobStore
from postroom.errors import BlobUnreadable, PayloadTooLarge
from postroom.storage_keys import Keyring, StorageKey, parse_keyring

OLD = StorageKey("old", b"\x01" * 32)
NEW = StorageKey("new", b"\x02" * 32)
OLD_ONLY = Keyring((OLD,))
CHUNK = encryption.CHUNK_BYTES


def seal(plaintext: bytes, key: StorageKey = OLD, chunk_bytes: int = CHUNK) -> bytes:
    out = io.BytesIO()
    writer = encryption.EncryptingWriter(out, key, chunk_bytes)
    for start in range(0, len(plaintext), 1000):  # written in pieces, as uploads arrive
        writer.write(plaintext[start : start + 1000])
    writer.finish()
    return out.getvalue()


def unseal(stored: bytes, keyring: Keyring = OLD_ONLY) -> bytes:
    with encryption.open_decrypting(io.BytesIO(stored), keyring, len(stored)) as reader:
        return reader.read()


@pytest.mark.parametrize(
    "size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17], ids=str
)
def test_round_trip_at_chunk_boundaries(size: int) -> None:
    plaintext = os.urandom(size)
    stored = seal(plaintext)
    assert unseal(stored) == plaintext
    chunks = max(1, -(-size // CHUNK))
    assert len(stored) == HEADER_BYTES + size + chunks * TAG_BYTES
    assert encryption.plaintext_bytes(len(stored), CHUNK) == size


@given(st.binary(max_size=600), st.integers(min_value=1, max_value=70))
def test_round_trip_of_any_size_and_chunk_size(plaintext: bytes, chunk_bytes: int) -> None:
    stored = seal(plaintext, chunk_bytes=chunk_bytes)
    assert unseal(stored) == plaintext
    assert encryption.plaintext_bytes(len(stored), chunk_bytes) == len(plaintext)


def test_reads_of_any_length_give_the_same_bytes() -> None:
    plaintext = os.urandom(3 * CHUNK + 5)
    stored = seal(plaintext)
    with encryption.open_decrypting(io.BytesIO(stored), Keyring((OLD,)), len(stored)) as fh:
        parts = [fh.read(n) for n in (1, 7, CHUNK, 3, 2 * CHUNK, 10**6)]
        assert fh.read(10) == b""
    assert b"".join(parts) == plaintext


def test_the_same_plaintext_never_gives_the_same_bytes() -> None:
    assert seal(b"ana@example.com") != seal(b"ana@example.com")
    assert b"ana@example.com" not in seal(b"email\r\nana@example.com\r\n")


def test_a_key_not_in_the_keyring_is_named() -> None:
    with pytest.raises(BlobUnreadable, match="'old'") as caught:
        unseal(seal(b"data"), Keyring((NEW,)))
    assert caught.value.details == {"key_id": "old"}


def test_a_key_with_the_right_id_but_other_bytes_fails_authentication() -> None:
    impostor = StorageKey("old", b"\x03" * 32)
    with pytest.raises(BlobUnreadable, match="header failed authentication"):
        unseal(seal(b"data"), Keyring((impostor,)))


@pytest.mark.parametrize(
    "offset", [0, 8, 9, 13, 14, 20, 45, 50, HEADER_BYTES - 1, HEADER_BYTES, -1, -17]
)
def test_any_changed_byte_is_refused(offset: int) -> None:
    stored = bytearray(seal(os.urandom(2 * CHUNK + 100)))
    stored[offset] ^= 0x40
    with pytest.raises(BlobUnreadable):
        unseal(bytes(stored))


@pytest.mark.parametrize(
    "cut",
    [
        HEADER_BYTES,  # the header alone
        HEADER_BYTES + CHUNK + TAG_BYTES,  # just after the first chunk: a clean chunk edge
        HEADER_BYTES + 2 * (CHUNK + TAG_BYTES),  # the last chunk gone
        -1,  # one byte short
    ],
)
def test_a_truncated_blob_is_refused(cut: int) -> None:
    stored = seal(os.urandom(2 * CHUNK + 100))
    with pytest.raises(BlobUnreadable):
        unseal(stored[:cut])


def test_bytes_added_after_the_end_are_refused() -> None:
    stored = seal(os.urandom(CHUNK + 10))
    with pytest.raises(BlobUnreadable):
        unseal(stored + seal(b"more")[HEADER_BYTES:])


def test_swapped_chunks_are_refused() -> None:
    stored = seal(os.urandom(3 * CHUNK))
    sealed = CHUNK + TAG_BYTES
    first = slice(HEADER_BYTES, HEADER_BYTES + sealed)
    second = slice(HEADER_BYTES + sealed, HEADER_BYTES + 2 * sealed)
    swapped = bytearray(stored)
    swapped[first], swapped[second] = stored[second], stored[first]
    with pytest.raises(BlobUnreadable, match="Part 1"):
        unseal(bytes(swapped))


def test_a_chunk_from_another_blob_is_refused() -> None:
    one, other = seal(os.urandom(CHUNK + 1)), seal(os.urandom(CHUNK + 1))
    mixed = one[: HEADER_BYTES + CHUNK + TAG_BYTES] + other[HEADER_BYTES + CHUNK + TAG_BYTES :]
    with pytest.raises(BlobUnreadable):
        unseal(mixed)


def test_rewrapping_changes_only_the_header() -> None:
    plaintext = os.urandom(CHUNK + 3)
    stored = seal(plaintext, OLD)
    header = encryption.rewrap(encryption.read_header(stored), Keyring((NEW, OLD)))
    assert header.key_id == "new"
    rotated = header.pack() + stored[HEADER_BYTES:]
    assert len(rotated) == len(stored)
    assert unseal(rotated, Keyring((NEW,))) == plaintext
    with pytest.raises(BlobUnreadable):
        unseal(rotated, Keyring((OLD,)))


def test_an_unknown_format_version_is_named() -> None:
    stored = bytearray(seal(b"data"))
    stored[len(encryption.MAGIC)] = 9
    with pytest.raises(BlobUnreadable, match="format 9"):
        unseal(bytes(stored))


# The local store ----------------------------------------------------------------------


def store(root: Path, *keys: StorageKey) -> LocalBlobStore:
    keyring = Keyring(keys) if keys else None
    return LocalBlobStore(root, signing_key=b"k", base_url="http://x", keyring=keyring)


def put(blobs: LocalBlobStore, key: str, data: bytes, max_bytes: int = 10**9) -> int:
    writer = blobs.writer(key, max_bytes=max_bytes)
    writer.write(data)
    return writer.commit()


def test_the_store_writes_ciphertext_and_reads_plaintext(tmp_path: Path) -> None:
    blobs = store(tmp_path, OLD)
    data = b"email\r\nana@example.com\r\n" * 5000
    assert put(blobs, "t/x/files/f.csv", data) == len(data)
    on_disk = (tmp_path / "t/x/files/f.csv").read_bytes()
    assert on_disk.startswith(encryption.MAGIC) and b"ana@example.com" not in on_disk
    assert blobs.size("t/x/files/f.csv") == len(data)
    assert blobs.read_bytes("t/x/files/f.csv") == data
    with blobs.open("t/x/files/f.csv") as fh:
        assert fh.read(5) == b"email"
    assert blobs.size("t/x/files/missing.csv") is None


def test_the_size_limit_counts_plaintext(tmp_path: Path) -> None:
    blobs = store(tmp_path, OLD)
    assert put(blobs, "a", b"x" * 100, max_bytes=100) == 100
    with pytest.raises(PayloadTooLarge):
        put(blobs, "b", b"x" * 101, max_bytes=100)
    assert list(blobs.stored_keys()) == ["a"]


def test_plaintext_blobs_from_before_encryption_are_read_and_rekeyed(tmp_path: Path) -> None:
    legacy = b"email,name\r\nana@example.com,Ana\r\n"
    put(store(tmp_path), "t/x/files/old.csv", legacy)  # a store without keys writes plaintext
    blobs = store(tmp_path, OLD)
    assert blobs.read_bytes("t/x/files/old.csv") == legacy
    assert blobs.size("t/x/files/old.csv") == len(legacy)
    assert blobs.rekey("t/x/files/old.csv") == "encrypted"
    assert b"ana@example.com" not in (tmp_path / "t/x/files/old.csv").read_bytes()
    assert blobs.read_bytes("t/x/files/old.csv") == legacy
    assert blobs.rekey("t/x/files/old.csv") == "current"


def test_rotation_rewraps_blobs_under_older_keys(tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK)
    put(store(tmp_path, OLD), "t/x/files/f.csv", data)
    body_before = (tmp_path / "t/x/files/f.csv").read_bytes()[HEADER_BYTES:]
    rotated = store(tmp_path, NEW, OLD)
    assert rotated.rekey("t/x/files/f.csv") == "rewrapped"
    assert (tmp_path / "t/x/files/f.csv").read_bytes()[HEADER_BYTES:] == body_before
    assert store(tmp_path, NEW).read_bytes("t/x/files/f.csv") == data
    assert rotated.rekey("t/x/files/f.csv") == "current"


def test_rotation_without_the_old_key_reports_the_blob(tmp_path: Path) -> None:
    put(store(tmp_path, OLD), "f", b"data")
    with pytest.raises(BlobUnreadable, match="'old'"):
        store(tmp_path, NEW).rekey("f")


def test_a_tampered_blob_on_disk_is_refused_when_read(tmp_path: Path) -> None:
    blobs = store(tmp_path, OLD)
    put(blobs, "f", b"email\r\n" + b"a@example.com\r\n" * 10000)
    path = tmp_path / "f"
    stored = bytearray(path.read_bytes())
    stored[HEADER_BYTES + CHUNK + 40] ^= 1
    path.write_bytes(bytes(stored))
    with blobs.open("f") as fh, pytest.raises(BlobUnreadable, match="Part 2"):
        fh.read()


def test_keys_listed_leave_out_uploads_in_progress(tmp_path: Path) -> None:
    blobs = store(tmp_path, OLD)
    put(blobs, "t/x/templates/a.html", b"<p>")
    unfinished = blobs.writer("t/x/files/b.csv", max_bytes=10)
    unfinished.write(b"abc")
    assert list(blobs.stored_keys()) == ["t/x/templates/a.html"]
    unfinished.abort()


def test_settings_style_keys_work_in_the_store(tmp_path: Path) -> None:
    keyring = parse_keyring("k2:" + "A" * 43 + "=, k1:" + "B" * 43 + "=")
    blobs = LocalBlobStore(tmp_path, signing_key=b"k", base_url="http://x", keyring=keyring)
    put(blobs, "f", b"hello")
    assert encryption.read_header((tmp_path / "f").read_bytes()).key_id == "k2"


def test_every_single_header_byte_is_authenticated() -> None:
    key = StorageKey("k" * 32, b"\x01" * 32)  # an id that fills its field
    stored = seal(b"data", key)
    for offset in range(HEADER_BYTES):
        for flip in (0x01, 0x80):
            damaged = bytearray(stored)
            damaged[offset] ^= flip
            with pytest.raises(BlobUnreadable):
                unseal(bytes(damaged), Keyring((key, OLD)))
