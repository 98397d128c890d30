"""Uploads: the signed endpoint of the local blob store (``PUT /uploads/{key}``), and noticing
an upload that landed, wherever it was stored (S3 is uploaded to directly: Postroom notices
there when a template or file is looked at or used, or when S3 says so)."""

from __future__ import annotations

import logging
from collections.abc import Callable
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
from postroom.blobs.s3 import S3BlobStore
from postroom.blobs.s3_events import created_objects
from postroom.errors import BadRequest, NotFound, PostroomError
from postroom.events.sns import SnsVerifier
from postroom.events.sns_intake import open_sns_message
from postroom.files import service as file_service
from postroom.runtime import Runtime
from postroom.templates import service as template_service
from postroom.templates.limits import RenderLimits
from postroom.tenants.quotas import tenant_quotas

log = logging.getLogger(__name__)

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


def notice_upload(rt: Runtime, key: str) -> bool:
    """Record the upload of whichever template or file waits for ``key`` (False when none
    does): the local store's PUT calls this at once, S3 event notifications when S3 says."""
    with rt.db.read_latest() as conn:
        template = template_service.find_template_by_key(conn, key)
        file = None if template is not None else file_service.find_file_by_key(conn, key)
    if template is not None:
        return notice_template_upload(rt, template)
    return file is not None and notice_file_upload(rt, file)


def notice_template_upload(rt: Runtime, template: Row[Any]) -> bool:
    """Check and record a pending template's upload if it has landed, with the blob I/O
    outside any write transaction (the templates it loads are looked up in a read one); True
    when the template's status may have changed."""
    if template.status != "pending_upload":
        return False
    with rt.db.read() as conn:
        checked = template_service.check_template_upload(
            conn,
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
    with rt.db.read() as conn:
        max_bytes = tenant_quotas(conn, file.tenant_id, rt.settings).file_bytes
    size = file_service.landed_file_size(rt.blobs, file, max_bytes=max_bytes)
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


def receive_s3_notification(
    rt: Runtime,
    store: S3BlobStore,
    body: bytes,
    *,
    verifier: SnsVerifier | None,
    fetch: Callable[[str], bytes],
) -> dict[str, Any]:
    """An S3 event notification delivered by SNS: each upload it names is noticed now and
    counted; one refused (over its limit) is counted, not raised, as SNS would only deliver
    it again; objects of other buckets or of no pending template or file are passed over."""
    envelope = open_sns_message(body, verifier=verifier, fetch=fetch)
    answer: dict[str, Any] = {"type": envelope.message_type}
    if envelope.confirmed:
        answer["confirmed"] = True
    if envelope.message is None:
        return answer
    try:
        created = created_objects(envelope.message)
    except ValueError as exc:
        raise BadRequest(
            f"Not an S3 event notification Postroom understands: {exc}.", code="unknown_s3_event"
        ) from None
    noticed = refused = 0
    for bucket, object_key in created:
        blob_key = store.location.blob_key(object_key)
        if bucket != store.location.bucket or blob_key is None:
            continue
        try:
            noticed += notice_upload(rt, blob_key)
        except PostroomError as exc:
            log.warning("upload %s refused on S3's notification: %s", object_key, exc.code)
            refused += 1
    return {**answer, "noticed": noticed, "refused": refused}
