"""Blobs in an S3 bucket (or MinIO, Ceph, R2…): clients upload straight to presigned PUT
URLs, reads go in ranges, writes in parts, and S3 encrypts everything at rest (SSE)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import parse_qsl, urlsplit

from postroom.blobs.base import PresignedUpload, check_key, upload_too_large
from postroom.blobs.ranges import open_ranged
from postroom.errors import BlobUnreadable, ConfigError, Conflict, NotFound

if TYPE_CHECKING:
    from botocore.client import BaseClient

log = logging.getLogger(__name__)

#: Server-side encryption choices in the storage URL (``?sse=``); "none" leaves it to the
#: bucket's default (every AWS bucket encrypts with AES256 by default since 2023).
SSE_CHOICES = ("AES256", "aws:kms", "none")
#: Ranged GETs while reading, and parts while writing (S3 wants parts of at least 5 MiB).
RANGE_BYTES = 8 * 1024 * 1024
PART_BYTES = 8 * 1024 * 1024
MIN_PART_BYTES = 5 * 1024 * 1024
#: The longest a SigV4 presigned URL may live.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
_RANGE_ATTEMPTS = 3
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
# 412: If-None-Match / If-Match did not hold; 409: a concurrent conditional write won.
_PRECONDITION = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where blobs go, from ``s3://bucket/prefix?sse=AES256`` (or ``?sse=aws:kms&kms_key_id=…``)."""

    bucket: str
    prefix: str
    sse: str = "AES256"
    kms_key_id: str | None = None

    @classmethod
    def from_url(cls, url: str) -> S3Location:
        """Raise ConfigError (POSTROOM_STORAGE_URL) for anything it cannot use."""
        parts = urlsplit(url)
        if not parts.netloc:
            raise ConfigError("POSTROOM_STORAGE_URL", f"no bucket in {url!r}")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted(set(query) - {"sse", "kms_key_id"})
        if unknown:
            raise ConfigError(
                "POSTROOM_STORAGE_URL", f"unknown option {unknown[0]!r}; use sse and kms_key_id"
            )
        sse = query.get("sse", "AES256")
        if sse not in SSE_CHOICES:
            raise ConfigError(
                "POSTROOM_STORAGE_URL", f"sse must be one of {', '.join(SSE_CHOICES)}, got {sse!r}"
            )
        kms_key_id = query.get("kms_key_id") or None
        if kms_key_id and sse != "aws:kms":
            raise ConfigError("POSTROOM_STORAGE_URL", "kms_key_id goes with sse=aws:kms only")
        return cls(parts.netloc, parts.path.strip("/"), sse, kms_key_id)

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{check_key(key)}" if self.prefix else check_key(key)

    def blob_key(self, object_key: str) -> str | None:
        """The blob key of an object under the prefix; None for any other object."""
        if not self.prefix:
            return object_key
        start = self.prefix + "/"
        return object_key[len(start) :] if object_key.startswith(start) else None

    def sse_params(self) -> dict[str, str]:
        """The encryption arguments of PutObject and CreateMultipartUpload."""
        if self.sse == "none":
            return {}
        params = {"ServerSideEncryption": self.sse}
        if self.kms_key_id:
            params["SSEKMSKeyId"] = self.kms_key_id
        return params

    def sse_headers(self) -> dict[str, str]:
        """The same as request headers: a presigned PUT signs them, so the client sends them."""
        if self.sse == "none":
            return {}
        headers = {"x-amz-server-side-encryption": self.sse}
        if self.kms_key_id:
            headers["x-amz-server-side-encryption-aws-kms-key-id"] = self.kms_key_id
        return headers


@dataclass(frozen=True, slots=True)
class S3Endpoint:
    """How to reach the store: the endpoint (empty: AWS), the region (empty: the standard
    chain's), and path-style addressing (MinIO and most self-hosted stores want it)."""

    endpoint_url: str = ""
    region: str = ""
    path_style: bool = False

    def client(self) -> BaseClient:
        """A boto3 S3 client; credentials come from the standard AWS chain."""
        import boto3
        from botocore.config import Config

        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if self.path_style else "auto"},
            retries={"mode": "standard", "max_attempts": 5},
            connect_timeout=5,
            read_timeout=60,
        )
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url or None,
            region_name=self.region or None,
            config=config,
        )


class S3BlobStore:
    """Blobs as objects under ``location.prefix``. Uploads do not pass through Postroom:
    ``presign_put`` signs a PUT with the content type, the encryption and ``If-None-Match: *``
    (one upload per URL); the size limit is checked when the upload is noticed (``size``)."""

    def __init__(
        self,
        location: S3Location,
        client: BaseClient,
        *,
        range_bytes: int = RANGE_BYTES,
        part_bytes: int = PART_BYTES,
    ) -> None:
        if part_bytes < MIN_PART_BYTES:
            raise ValueError(f"parts must be at least {MIN_PART_BYTES} bytes")
        self.location = location
        self.client = client
        self._range_bytes = range_bytes
        self._part_bytes = part_bytes
        self._warned_forbidden = False

    def _object(self, key: str) -> dict[str, str]:
        return {"Bucket": self.location.bucket, "Key": self.location.object_key(key)}

    def presign_put(
        self, key: str, *, content_type: str, max_bytes: int, expires_at: datetime
    ) -> PresignedUpload:
        # S3 checks the signature against its own clock: the lifetime is counted from now.
        seconds = int(expires_at.timestamp() - time.time())
        params = {
            **self._object(key),
            "ContentType": content_type,
            "IfNoneMatch": "*",
            **self.location.sse_params(),
        }
        url = self.client.generate_presigned_url(
            "put_object", Params=params, ExpiresIn=max(1, min(seconds, MAX_PRESIGN_SECONDS))
        )
        headers = {"Content-Type": content_type, "If-None-Match": "*"}
        return PresignedUpload(
            url=url,
            method="PUT",
            headers={**headers, **self.location.sse_headers()},
            expires_at=expires_at,
        )

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def size(self, key: str) -> int | None:
        head = self._head(key)
        return None if head is None else int(head["ContentLength"])

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            head: dict[str, Any] = self.client.head_object(**self._object(key))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            if _code(exc) in ("403", "AccessDenied", "Forbidden"):
                # Without s3:ListBucket S3 answers 403 for a missing object; a real lack of
                # s3:GetObject shows in /readyz, which reads back what it wrote.
                if not self._warned_forbidden:
                    self._warned_forbidden = True
                    log.warning(
                        "S3 answered 403 to HEAD %s: taken as missing (grant s3:ListBucket "
                        "so that S3 answers 404 instead)",
                        self._object(key)["Key"],
                    )
                return None
            raise
        return head

    def open(self, key: str) -> BinaryIO:
        """The object read in ranged GETs of ``range_bytes``, each pinned (If-Match) to the
        version opened: an object replaced meanwhile raises BlobUnreadable, never a mix."""
        head = self._head(key)
        if head is None:
            raise NotFound(f"No blob {key!r}.", code="blob_not_found")
        etag = str(head["ETag"])

        def fetch_range(start: int, end: int) -> bytes:
            return self._fetch_range(key, start, end, etag)

        return open_ranged(
            fetch_range, size=int(head["ContentLength"]), range_bytes=self._range_bytes
        )

    def _fetch_range(self, key: str, start: int, end: int, etag: str) -> bytes:
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            IncompleteReadError,
            ReadTimeoutError,
            ResponseStreamingError,
        )

        for attempt in range(1, _RANGE_ATTEMPTS + 1):
            try:
                response = self.client.get_object(
                    **self._object(key), Range=f"bytes={start}-{end}", IfMatch=etag
                )
                data: bytes = response["Body"].read()
            except ClientError as exc:
                if _code(exc) in _MISSING:
                    raise NotFound(f"No blob {key!r}.", code="blob_not_found") from None
                if _code(exc) in _PRECONDITION:
                    raise BlobUnreadable(f"The blob {key!r} changed while it was read.") from None
                raise
            # botocore retries the request, not a body cut short while it is streamed.
            except (
                ConnectionClosedError,
                IncompleteReadError,
                ReadTimeoutError,
                ResponseStreamingError,
            ):
                if attempt == _RANGE_ATTEMPTS:
                    raise
                continue
            if len(data) == end - start + 1 or attempt == _RANGE_ATTEMPTS:
                return data
        raise AssertionError("unreachable")

    def read_bytes(self, key: str) -> bytes:
        with self.open(key) as stream:
            return stream.read()

    def writer(self, key: str, *, max_bytes: int) -> S3BlobWriter:
        return S3BlobWriter(self, key, max_bytes=max_bytes, part_bytes=self._part_bytes)

    def delete(self, key: str) -> None:
        self.client.delete_object(**self._object(key))


class S3BlobWriter:
    """Buffers up to one part: a small blob is one PutObject, a larger one a multipart upload
    (aborted on failure). Both commit with ``If-None-Match: *``, so of two racing writers
    one wins and the other gets Conflict; nothing is visible before ``commit``."""

    def __init__(self, store: S3BlobStore, key: str, *, max_bytes: int, part_bytes: int) -> None:
        self._store = store
        self._key = key
        self._target = store._object(key)
        self._max_bytes = max_bytes
        self._part_bytes = part_bytes
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self._max_bytes:
            self.abort()
            raise upload_too_large(self._max_bytes)
        self._buffer += chunk
        try:
            while len(self._buffer) >= self._part_bytes:
                self._send_part(bytes(self._buffer[: self._part_bytes]))
                del self._buffer[: self._part_bytes]
        except BaseException:
            self.abort()
            raise

    def _send_part(self, data: bytes) -> None:
        client = self._store.client
        if self._upload_id is None:
            started = client.create_multipart_upload(
                **self._target, **self._store.location.sse_params()
            )
            self._upload_id = str(started["UploadId"])
        number = len(self._parts) + 1
        sent = client.upload_part(
            **self._target, UploadId=self._upload_id, PartNumber=number, Body=data
        )
        self._parts.append({"ETag": sent["ETag"], "PartNumber": number})

    def commit(self) -> int:
        from botocore.exceptions import ClientError

        client = self._store.client
        try:
            # The conditional write below is what decides; this check spares a multipart
            # upload on stores that ignore If-None-Match (older MinIO and Ceph), where a
            # write racing this one between the check and the commit would still win.
            if self._store.exists(self._key):
                raise _already_uploaded()
            if self._upload_id is None:
                client.put_object(
                    **self._target,
                    Body=bytes(self._buffer),
                    IfNoneMatch="*",
                    **self._store.location.sse_params(),
                )
            else:
                if self._buffer:
                    self._send_part(bytes(self._buffer))
                client.complete_multipart_upload(
                    **self._target,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                    IfNoneMatch="*",
                )
                self._upload_id = None
        except ClientError as exc:
            self.abort()
            if _code(exc) in _PRECONDITION:
                raise _already_uploaded() from None
            raise
        except BaseException:
            self.abort()
            raise
        self._buffer = bytearray()
        return self.size

    def abort(self) -> None:
        self._buffer = bytearray()
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        try:
            self._store.client.abort_multipart_upload(**self._target, UploadId=upload_id)
        except Exception:
            # A lifecycle rule (AbortIncompleteMultipartUpload) cleans up what this leaves.
            log.warning("could not abort multipart upload %s", upload_id, exc_info=True)


def _already_uploaded() -> Conflict:
    return Conflict("Something was already uploaded to this URL.", code="already_uploaded")


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def open_s3_blob_store(url: str, endpoint: S3Endpoint) -> S3BlobStore:
    """The store for an ``s3://`` storage URL."""
    return S3BlobStore(S3Location.from_url(url), endpoint.client())
