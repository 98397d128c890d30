"""Use cases for recipient files: presign an upload, notice it has landed, look it up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from postroom.blobs import BlobStore, PresignedUpload
from postroom.blobs.base import upload_too_large
from postroom.db.tables import files
from postroom.errors import (
    Conflict,
    FileRejected,
    Gone,
    NotFound,
    Unprocessable,
    UnsupportedMediaType,
)
from postroom.files.csvreader import CsvLimits, RecipientFile
from postroom.ids import new_id

CSV_CONTENT_TYPES = ("text/csv", "application/csv", "text/plain")


@dataclass(frozen=True, slots=True)
class NewFile:
    file_id: str
    upload: PresignedUpload


def create_file_upload(
    conn: Connection,
    blobs: BlobStore,
    *,
    tenant_id: str,
    filename: str,
    content_type: str,
    now: datetime,
    ttl_seconds: int,
    max_bytes: int,
) -> NewFile:
    """Record a recipient file awaiting upload and return where to PUT it."""
    content_type = content_type.split(";")[0].strip().lower()
    if content_type not in CSV_CONTENT_TYPES:
        raise UnsupportedMediaType(
            f"Recipient files must be CSV; {content_type!r} is not accepted.",
            code="unsupported_content_type",
            details={"accepted": list(CSV_CONTENT_TYPES)},
        )
    filename = filename.strip()
    if not filename or len(filename) > 300:
        raise Unprocessable("A filename of 1 to 300 characters is required.", code="bad_filename")
    file_id = new_id("file")
    key = f"t/{tenant_id}/files/{file_id}.csv"
    conn.execute(
        insert(files).values(
            id=file_id,
            tenant_id=tenant_id,
            filename=filename,
            content_type=content_type,
            status="pending_upload",
            blob_key=key,
            created_at=now,
        )
    )
    upload = blobs.presign_put(
        key,
        content_type=content_type,
        max_bytes=max_bytes,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    return NewFile(file_id, upload)


def get_file(conn: Connection, tenant_id: str, file_id: str) -> Row[Any]:
    row = conn.execute(
        select(files).where(files.c.id == file_id, files.c.tenant_id == tenant_id)
    ).first()
    if row is None:
        raise NotFound(f"No file {file_id!r}.", code="file_not_found")
    return row


def readable_file(conn: Connection, tenant_id: str, file_id: str) -> Row[Any]:
    """A file whose CSV can be read: 409 ``file_not_uploaded`` before its upload, 410
    ``file_source_deleted`` once retention deleted it (the row says when)."""
    row = get_file(conn, tenant_id, file_id)
    if row.source_deleted_at is not None:
        raise Gone(
            "The file's CSV was deleted by the retention policy "
            f"on {row.source_deleted_at.isoformat()}; upload it again to use it.",
            code="file_source_deleted",
            details={"source_deleted_at": row.source_deleted_at.isoformat()},
        )
    if row.status != "uploaded":
        raise Conflict("The file has not been uploaded yet.", code="file_not_uploaded")
    return row


def find_file_by_key(conn: Connection, blob_key: str) -> Row[Any] | None:
    return conn.execute(select(files).where(files.c.blob_key == blob_key)).first()


def landed_file_size(blobs: BlobStore, file: Row[Any], *, max_bytes: int) -> int | None:
    """The size of a pending file's upload (blob I/O only, no SQL): None while nothing has
    landed; an upload over ``max_bytes`` is deleted and refused with 413
    ``upload_too_large``, as a store that took it without a limit cannot refuse it itself."""
    size = blobs.size(file.blob_key)
    if size is not None and size > max_bytes:
        blobs.delete(file.blob_key)
        raise upload_too_large(max_bytes)
    return size


def save_file_upload(conn: Connection, file: Row[Any], size: int, now: datetime) -> None:
    """Mark a pending file ``uploaded`` (idempotent: a file no longer pending is left alone)."""
    conn.execute(
        update(files)
        .where(files.c.id == file.id, files.c.status == "pending_upload")
        .values(status="uploaded", size=size, uploaded_at=now)
    )


def count_rows(
    blobs: BlobStore,
    blob_key: str,
    *,
    delimiter: str | None,
    email_column: str | None,
    limits: CsvLimits,
    up_to: int,
) -> int:
    """The file's data rows as file processing counts them (valid, invalid and duplicate;
    blank ones skipped), reading no further than row ``up_to``. A file that cannot be read
    counts the rows before the problem: processing then fails the campaign with it."""
    count = 0
    with blobs.open(blob_key) as stream:
        reader = RecipientFile(
            stream, delimiter=delimiter, email_column=email_column, limits=limits
        )
        try:
            for _row in reader.checked_rows():
                count += 1
                if count >= up_to:
                    break
        except FileRejected:
            pass
    return count
