"""Routes under /api/v1/files."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from postroom.api.deps import CallerDep, RuntimeDep
from postroom.api.errors import error_responses
from postroom.api.scopes import needs
from postroom.api.uploads import UploadTicket, ticket
from postroom.files import service
from postroom.tenants.quotas import check_file_size, tenant_quotas
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
