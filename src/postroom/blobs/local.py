"""Blobs as files on local disk, encrypted (blobs/encryption.py) and uploaded through
Postroom's own signed ``/uploads`` URLs."""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Literal
from urllib.parse import quote, urlencode

from postroom import signing
from postroom.blobs import encryption
from postroom.blobs.base import PresignedUpload, check_key, upload_too_large
from postroom.errors import (
    BlobUnreadable,
    Conflict,
    Forbidden,
    NotFound,
    UnsupportedMediaType,
)
from postroom.storage_keys import Keyring

#: What bringing one blob under the current storage key did (see ``LocalBlobStore.rekey``).
Rekeyed = Literal["current", "rewrapped", "encrypted"]

UPLOAD_PATH = "/uploads/"
_COPY_BYTES = 1024 * 1024


class LocalBlobStore:
    """Files under ``root``; each key is a relative path. With a ``keyring`` every blob is
    written encrypted under its current key; blobs written in plaintext before encryption
    existed are still read (and ``rekey`` encrypts them). Sizes are plaintext sizes."""

    def __init__(
        self, root: Path, *, signing_key: bytes, base_url: str, keyring: Keyring | None = None
    ) -> None:
        self.root = root
        self.keyring = keyring
        self._signing_key = signing_key
        self._base_url = base_url.rstrip("/")

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def presign_put(
        self, key: str, *, content_type: str, max_bytes: int, expires_at: datetime
    ) -> PresignedUpload:
        expires = str(int(expires_at.timestamp()))
        sig = signing.sign(self._signing_key, "PUT", key, expires, str(max_bytes), content_type)
        query = urlencode({"expires": expires, "max": max_bytes, "ct": content_type, "sig": sig})
        return PresignedUpload(
            url=f"{self._base_url}{UPLOAD_PATH}{quote(key)}?{query}",
            method="PUT",
            headers={"Content-Type": content_type},
            expires_at=expires_at,
        )

    def check_upload(
        self,
        key: str,
        *,
        expires: str,
        max_bytes: str,
        signed_type: str,
        signature: str,
        content_type: str | None,
        now: datetime,
    ) -> int:
        """Verify a presigned PUT before reading its body; returns the size limit in bytes."""
        check_key(key)
        if not signing.verify(
            self._signing_key, signature, "PUT", key, expires, max_bytes, signed_type
        ):
            raise Forbidden("The upload URL's signature is not valid.", code="invalid_signature")
        if not (expires.isascii() and expires.isdigit()) or int(expires) < now.timestamp():
            raise Forbidden("The upload URL has expired; ask for a new one.", code="url_expired")
        if (content_type or "").split(";")[0].strip().lower() != signed_type.lower():
            raise UnsupportedMediaType(
                f"This URL accepts Content-Type {signed_type!r} only.",
                code="wrong_content_type",
                details={"expected": signed_type, "got": content_type},
            )
        if self.exists(key):
            raise Conflict("Something was already uploaded to this URL.", code="already_uploaded")
        return int(max_bytes)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int | None:
        try:
            with self._path(key).open("rb", buffering=0) as fh:
                stored_bytes = os.fstat(fh.fileno()).st_size
                start = fh.read(encryption.HEADER_BYTES)
        except FileNotFoundError:
            return None
        if not encryption.is_encrypted(start):
            return stored_bytes
        header = encryption.read_header(start)
        return encryption.plaintext_bytes(stored_bytes, header.chunk_bytes)

    def open(self, key: str) -> BinaryIO:
        """The blob's plaintext as a stream read front to back (not seekable when encrypted);
        reading a damaged or foreign-keyed blob raises BlobUnreadable."""
        try:
            fh = self._path(key).open("rb", buffering=0)
        except FileNotFoundError:
            raise NotFound(f"No blob {key!r}.", code="blob_not_found") from None
        try:
            stored_bytes = os.fstat(fh.fileno()).st_size
            is_encrypted = encryption.is_encrypted(fh.read(len(encryption.MAGIC)))
            fh.seek(0)
            if not is_encrypted:
                return io.BufferedReader(fh)
            return encryption.open_decrypting(fh, self._keyring_for_reading(), stored_bytes)
        except BaseException:
            fh.close()
            raise

    def read_bytes(self, key: str) -> bytes:
        with self.open(key) as fh:
            return fh.read()

    def writer(self, key: str, *, max_bytes: int) -> LocalBlobWriter:
        return LocalBlobWriter(self._path(key), max_bytes=max_bytes, keyring=self.keyring)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def stored_keys(self) -> Iterator[str]:
        """The key of every blob stored (uploads still in progress are not blobs yet)."""
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                yield path.relative_to(self.root).as_posix()

    def rekey(self, key: str) -> Rekeyed:
        """Bring one blob under the keyring's current key: an encrypted one has its data key
        re-wrapped in place (the header alone is rewritten, with one write, so a reader sees
        the old header or the new one), a plaintext one is encrypted into a new file that
        replaces it. Raises BlobUnreadable when the blob's key is unknown or its header is
        damaged, NotFound when it is gone."""
        keyring = self._keyring_for_reading()
        path = self._path(key)
        try:
            fh = path.open("r+b", buffering=0)
        except FileNotFoundError:
            raise NotFound(f"No blob {key!r}.", code="blob_not_found") from None
        with fh:
            start = fh.read(encryption.HEADER_BYTES)
            if not encryption.is_encrypted(start):
                fh.seek(0)
                self._encrypt_in_place(path, fh, keyring)
                return "encrypted"
            header = encryption.read_header(start)
            if header.key_id == keyring.current.key_id:
                encryption.open_data_key(header, keyring)  # a damaged header is reported now
                return "current"
            os.pwrite(fh.fileno(), encryption.rewrap(header, keyring).pack(), 0)
            os.fsync(fh.fileno())
            return "rewrapped"

    def _encrypt_in_place(self, path: Path, plaintext: BinaryIO, keyring: Keyring) -> None:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
        try:
            with tmp.open("wb") as out:
                writer = encryption.EncryptingWriter(out, keyring.current)
                while chunk := plaintext.read(_COPY_BYTES):
                    writer.write(chunk)
                writer.finish()
                out.flush()
                os.fsync(out.fileno())
            # Narrows (cannot close) the window in which a blob deleted meanwhile comes back.
            if not path.exists():
                return
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def _keyring_for_reading(self) -> Keyring:
        if self.keyring is None:
            raise BlobUnreadable(
                "The blob is encrypted and this blob store was opened without storage keys."
            )
        return self.keyring


class LocalBlobWriter:
    """Writes to a temporary file; ``commit`` links it into place only if the key is still
    free, so two racing uploads cannot both win and a reader never sees half a file."""

    def __init__(self, target: Path, *, max_bytes: int, keyring: Keyring | None = None) -> None:
        self._target = target
        self._max_bytes = max_bytes
        target.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
        self._fh: BinaryIO | None = self._tmp.open("wb")
        self._encrypting = (
            encryption.EncryptingWriter(self._fh, keyring.current) if keyring else None
        )
        self.size = 0  # plaintext bytes, which the limit counts

    def write(self, chunk: bytes) -> None:
        assert self._fh is not None
        self.size += len(chunk)
        if self.size > self._max_bytes:
            self.abort()
            raise upload_too_large(self._max_bytes)
        if self._encrypting is not None:
            self._encrypting.write(chunk)
        else:
            self._fh.write(chunk)

    def commit(self) -> int:
        assert self._fh is not None
        if self._encrypting is not None:
            self._encrypting.finish()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None
        try:
            os.link(self._tmp, self._target)
        except FileExistsError:
            raise Conflict(
                "Something was already uploaded to this URL.", code="already_uploaded"
            ) from None
        finally:
            self._tmp.unlink(missing_ok=True)
        return self.size

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._tmp.unlink(missing_ok=True)
