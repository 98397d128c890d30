"""Uploads: the signed endpoint of the local blob store (``PUT /uploads/{key}``), and noticing
an upload that landed, wherever it was stored (S3 is uploaded to directly: Postroom notices
there when a template or file is looked at or used, or when S3 says so)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import Row
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
        # With S3 storage the presigned URLs point at S3: nothing is uploaded here.
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
    await run_in_threadpool(notice_upload, rt, key)
    return {"key": key, "size": size}


def notice_upload(rt: Runtime, key: str) -> None:
    """Record the upload of whichever template or file waits for ``key`` (nothing when none
    does): the local store's PUT calls this at once, S3 event notifications when S3 says."""
    with rt.db.read_latest() as conn:
        template = template_service.find_template_by_key(conn, key)
        file = None if template is not None else file_service.find_file_by_key(conn, key)
    if template is not None:
        notice_template_upload(rt, template)
    elif file is not None:
        notice_file_upload(rt, file)


def notice_template_upload(rt: Runtime, template: Row[Any]) -> bool:
    """Check and record a pending template's upload if it has landed, with the blob I/O
    outside any transaction; True when the template's status may have changed."""
    if template.status != "pending_upload":
        return False
    checked = template_service.check_template_upload(
        rt.blobs,
        template,
        max_bytes=rt.settings.template_max_bytes,
        now=rt.clock.now(),
        limits=RenderLimits.from_settings(rt.settings),
    )
    if checked is None:
        return False
    with rt.db.write() as conn:
        template_service.save_template_check(conn, template, checked)
    return True


def notice_file_upload(rt: Runtime, file: Row[Any]) -> bool:
    """Record a pending file's upload if it has landed (refusing one over the size limit),
    with the blob I/O outside any transaction; True when the file's status may have changed."""
    if file.status != "pending_upload":
        return False
    size = file_service.landed_file_size(rt.blobs, file, max_bytes=rt.settings.file_max_bytes)
    if size is None:
        return False
    with rt.db.write() as conn:
        file_service.save_file_upload(conn, file, size, rt.clock.now())
    return True


def notice_campaign_uploads(rt: Runtime, tenant_id: str, template_id: str, file_id: str) -> None:
    """Before a campaign is created from them: notice the template's and the file's uploads
    if they are still pending (missing ones are left for the campaign's own checks)."""
    with rt.db.read_latest() as conn:
        try:
            template = template_service.get_template(conn, tenant_id, template_id)
            file = file_service.get_file(conn, tenant_id, file_id)
        except NotFound:
            return
    notice_template_upload(rt, template)
    notice_file_upload(rt, file)
