"""The signed upload endpoint of the local blob store (``PUT /uploads/{key}``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from postroom.api.errors import error_responses
from postroom.blobs import PresignedUpload
from postroom.blobs.base import upload_too_large
from postroom.blobs.local import LocalBlobStore
from postroom.errors import NotFound
from postroom.files import service as file_service
from postroom.runtime import Runtime
from postroom.templates import service as template_service
from postroom.templates.limits import RenderLimits

router = APIRouter(tags=["uploads"])


class UploadTicket(BaseModel):
    upload_url: str
    method: str
    headers: dict[str, str]
    expires_at: datetime | None


class UploadReceipt(BaseModel):
    key: str
    size: int


def ticket(upload: PresignedUpload) -> dict[str, Any]:
    return {
        "upload_url": upload.url,
        "method": upload.method,
        "headers": upload.headers,
        "expires_at": upload.expires_at,
    }


@router.put(
    "/uploads/{key:path}",
    status_code=201,
    response_model=UploadReceipt,
    responses=error_responses(403, 404, 409, 413, 415),
)
async def upload(key: str, request: Request) -> dict[str, Any]:
    """Receive the body for a presigned URL: the signature, expiry, size limit and content
    type are checked, the body is streamed to disk, and a second upload is refused."""
    rt: Runtime = request.app.state.runtime
    store = rt.blobs
    if not isinstance(store, LocalBlobStore):
        raise NotFound("Uploads go straight to the object store here.", code="not_found")
    q = request.query_params
    max_bytes = store.check_upload(
        key,
        expires=q.get("expires", ""),
        max_bytes=q.get("max", "0"),
        signed_type=q.get("ct", ""),
        signature=q.get("sig", ""),
        content_type=request.headers.get("content-type"),
        now=rt.clock.now(),
    )
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise upload_too_large(max_bytes)
    writer = store.writer(key, max_bytes=max_bytes)
    try:
        async for chunk in request.stream():
            writer.write(chunk)
        size = await run_in_threadpool(writer.commit)
    except BaseException:
        writer.abort()
        raise
    await run_in_threadpool(_record_upload, rt, key)
    return {"key": key, "size": size}


def _record_upload(rt: Runtime, key: str) -> None:
    now = rt.clock.now()
    with rt.db.write() as conn:
        template = template_service.find_template_by_key(conn, key)
        if template is not None:
            template_service.record_template_upload(
                conn,
                rt.blobs,
                template,
                max_bytes=rt.settings.template_max_bytes,
                now=now,
                limits=RenderLimits.from_settings(rt.settings),
            )
            return
        file = file_service.find_file_by_key(conn, key)
        if file is not None:
            file_service.record_file_upload(conn, rt.blobs, file, now)
