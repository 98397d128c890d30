"""The blob store interface and the URL-scheme switch that picks a backend."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import urlsplit

from postroom.errors import ConfigError, NotFound, PayloadTooLarge
from postroom.storage_keys import Keyring

if TYPE_CHECKING:
    from postroom.blobs.s3 import S3Endpoint

_SAFE_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,299}$")


def check_key(key: str) -> str:
    """Keys are made by Postroom; anything that could escape the root is refused."""
    if not _SAFE_KEY.match(key) or ".." in key or "//" in key:
        raise NotFound("No such upload location.", code="not_found")
    return key


def upload_too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload is larger than the limit of {max_bytes} bytes.",
        code="upload_too_large",
        details={"max_bytes": max_bytes},
    )


@dataclass(frozen=True, slots=True)
class PresignedUpload:
    """Where and how a client uploads one blob."""

    url: str
    method: str
    headers: dict[str, str] = field(default_factory=dict)
    expires_at: datetime | None = None


class BlobWriter(Protocol):
    """An upload in progress: nothing is visible under its key until ``commit``."""

    def write(self, chunk: bytes) -> None: ...
    def commit(self) -> int: ...
    def abort(self) -> None: ...


class BlobStore(Protocol):
    """Blobs by key. ``size`` and everything read or written are the plaintext, whatever
    the store does to keep it encrypted at rest."""

    def presign_put(
        self, key: str, *, content_type: str, max_bytes: int, expires_at: datetime
    ) -> PresignedUpload: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int | None: ...
    def open(self, key: str) -> BinaryIO: ...
    def read_bytes(self, key: str) -> bytes: ...
    def writer(self, key: str, *, max_bytes: int) -> BlobWriter: ...
    def delete(self, key: str) -> None: ...


def open_blob_store(
    url: str,
    *,
    signing_key: bytes,
    base_url: str,
    keyring: Keyring | None = None,
    s3_endpoint: S3Endpoint | None = None,
) -> BlobStore:
    """Pick the backend by URL scheme: ``file://DIR`` (relative to the working directory) or
    ``s3://BUCKET/PREFIX`` (reached through ``s3_endpoint``, default AWS).

    ``keyring`` encrypts what the local store writes. An object store that clients upload to
    directly cannot be given plaintext to encrypt; it uses the store's own server-side
    encryption instead, chosen in its URL (``?sse=``)."""
    from postroom.blobs.local import LocalBlobStore

    parts = urlsplit(url)
    if parts.scheme == "file":
        root = Path(parts.netloc + parts.path) if parts.netloc else Path(parts.path)
        if not str(root):
            raise ConfigError("POSTROOM_STORAGE_URL", f"no directory in {url!r}")
        return LocalBlobStore(root, signing_key=signing_key, base_url=base_url, keyring=keyring)
    if parts.scheme == "s3":
        from postroom.blobs.s3 import S3Endpoint, open_s3_blob_store

        return open_s3_blob_store(url, s3_endpoint or S3Endpoint())
    raise ConfigError("POSTROOM_STORAGE_URL", f"unknown scheme {parts.scheme!r} in {url!r}")
