"""Routes under /api/v1/files."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from postroom.api.deps import ApiKeyDep, CallerDep, RuntimeDep
from postroom.api.errors import error_responses
from postroom.api.scopes import needs
from postroom.api.uploads import UploadTicket, ticket
from postroom.campaigns.uploads import current_file
from postroom.files import service
from postroom.runtime import Runtime
from postroom.tenants.quotas import check_file_size, tenant_quotas
from postroom.tenants.service import authenticate
from postroom.wiretext import OneLine, Text

router = APIRouter(
    prefix="/api/v1/files",
    tags=["files"],
    dependencies=[needs("campaigns:read", "campaigns:write")],
    responses=error_responses(403),
)


class FileUploadRequest(BaseModel):
    filename: OneLine = Field(min_length=1, max_length=300)
    content_type: Text = Field(default="text/csv", max_length=100)
    size: int | None = Field(
        default=None,
        ge=0,
        description="The file's size in bytes, when known: a file over the tenant's quota is "
        "refused now (413 quota_exceeded) rather than during the upload.",
    )


class FileUploadTicket(UploadTicket):
    file_id: str


class FileView(BaseModel):
    file_id: str
    filename: str
    status: str = Field(description="pending_upload, uploaded, or source_deleted (retention)")
    size: int | None
    created_at: datetime
    uploaded_at: datetime | None
    processed_at: datetime | None = Field(description="when a campaign last read it")
    source_deleted_at: datetime | None = Field(description="when retention deleted the CSV")


@router.post(
    "/presigned-url",
    status_code=201,
    response_model=FileUploadTicket,
    responses=error_responses(401, 413, 415, 422),
)
def create_file_upload(
    body: FileUploadRequest, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    """Register a recipient CSV and get a signed URL to PUT it to; the URL carries the
    tenant's file size quota."""
    settings = rt.settings
    with rt.db.write() as conn:
        quota = tenant_quotas(conn, caller.tenant_id, settings)
        check_file_size(quota, body.size)
        created = service.create_file_upload(
            conn,
            rt.blobs,
            tenant_id=caller.tenant_id,
            filename=body.filename,
            content_type=body.content_type,
            now=rt.clock.now(),
            ttl_seconds=settings.upload_url_ttl_seconds,
            max_bytes=quota.file_bytes,
        )
    return {"file_id": created.file_id, **ticket(created.upload)}


@router.get("/{file_id}", response_model=FileView, responses=error_responses(401, 404, 413))
def get_file(file_id: str, rt: RuntimeDep, key: ApiKeyDep) -> FileView:
    """A recipient file: its upload, its last use, and whether its CSV is still kept. A
    pending file whose upload has landed is recorded now (413 ``upload_too_large`` for one
    over the limit, which is deleted)."""
    with rt.db.read_latest() as conn:
        tenant_id = authenticate(conn, key).tenant_id
    row = current_file(rt, tenant_id, file_id)
    return FileView(
        file_id=row.id,
        filename=row.filename,
        status="source_deleted" if row.source_deleted_at is not None else row.status,
        size=row.size,
        created_at=row.created_at,
        uploaded_at=row.uploaded_at,
        processed_at=row.processed_at,
        source_deleted_at=row.source_deleted_at,
    )


@router.get(
    "/{file_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, **error_responses(401, 404, 409, 410)},
)
def download_file(file_id: str, rt: RuntimeDep, key: ApiKeyDep) -> StreamingResponse:
    """The CSV as uploaded (less the rows of erased recipients); 410 ``file_source_deleted``
    once the retention policy deleted it."""
    with rt.db.read_latest() as conn:
        row = service.readable_file(conn, authenticate(conn, key).tenant_id, file_id)
    return StreamingResponse(
        _content(rt, row.blob_key),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="recipients.csv"'},
    )


def _content(rt: Runtime, blob_key: str) -> Iterator[bytes]:
    with rt.blobs.open(blob_key) as stream:
        while chunk := stream.read(64 * 1024):
            yield chunk
