"""Uploads over HTTP: the signed endpoint of the local blob store (``PUT /uploads/{key}``) and
S3's event notifications through SNS; both hand what landed to ``campaigns/uploads.py``,
which notices it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from postroom.api.errors import error_responses
from postroom.blobs import PresignedUpload
from postroom.blobs.base import upload_too_large
from postroom.blobs.local import LocalBlobStore
from postroom.blobs.s3 import S3BlobStore
from postroom.blobs.s3_events import created_objects
from postroom.campaigns.uploads import notice_upload
from postroom.errors import BadRequest, NotFound, PostroomError
from postroom.events.sns import SnsVerifier
from postroom.events.sns_intake import open_sns_message
from postroom.runtime import Runtime

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
