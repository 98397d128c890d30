"""Blobs as files on local disk, uploaded through Postroom's own signed ``/uploads`` URLs."""

from __future__ import annotations

import os
import re
import secrets
from datetime import datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

from postroom import signing
from postroom.blobs.base import PresignedUpload
from postroom.errors import Conflict, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType

_SAFE_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,299}$")
UPLOAD_PATH = "/uploads/"


def check_key(key: str) -> str:
    """Keys are made by Postroom; anything that could escape the root is refused."""
    if not _SAFE_KEY.match(key) or ".." in key or "//" in key:
        raise NotFound("No such upload location.", code="not_found")
    return key


class LocalBlobStore:
    """Files under ``root``; each key is a relative path."""

    def __init__(self, root: Path, *, signing_key: bytes, base_url: str) -> None:
        self.root = root
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
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise NotFound(f"No blob {key!r}.", code="blob_not_found") from None

    def read_bytes(self, key: str) -> bytes:
        with self.open(key) as fh:
            return fh.read()

    def writer(self, key: str, *, max_bytes: int) -> LocalBlobWriter:
        return LocalBlobWriter(self._path(key), max_bytes=max_bytes)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def upload_too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload is larger than the limit of {max_bytes} bytes.",
        code="upload_too_large",
        details={"max_bytes": max_bytes},
    )


class LocalBlobWriter:
    """Writes to a temporary file; ``commit`` links it into place only if the key is still
    free, so two racing uploads cannot both win and a reader never sees half a file."""

    def __init__(self, target: Path, *, max_bytes: int) -> None:
        self._target = target
        self._max_bytes = max_bytes
        target.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
        self._fh: BinaryIO | None = self._tmp.open("wb")
        self.size = 0

    def write(self, chunk: bytes) -> None:
        assert self._fh is not None
        self.size += len(chunk)
        if self.size > self._max_bytes:
            self.abort()
            raise upload_too_large(self._max_bytes)
        self._fh.write(chunk)

    def commit(self) -> int:
        assert self._fh is not None
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
