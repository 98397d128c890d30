"""Files posted to the console's new-campaign form, stored where a presigned upload would
put them and recorded by the same services, so they are checked exactly as API uploads are."""

from __future__ import annotations

from typing import BinaryIO

from postroom.campaigns.uploads import notice_template_upload
from postroom.files import service as file_service
from postroom.runtime import Runtime
from postroom.templates import service as template_service
from postroom.tenants.quotas import tenant_quotas

_CHUNK = 1024 * 1024


def store_template(rt: Runtime, tenant_id: str, name: str, subject: str, body: BinaryIO) -> str:
    """A template from the form: ``ready`` or ``invalid`` (with reasons) like any upload."""
    settings = rt.settings
    with rt.db.write() as conn:
        created = template_service.create_template_upload(
            conn,
            rt.blobs,
            tenant_id=tenant_id,
            name=name,
            subject=subject,
            now=rt.clock.now(),
            ttl_seconds=settings.upload_url_ttl_seconds,
            max_bytes=settings.template_max_bytes,
        )
        template = template_service.get_template(conn, tenant_id, created.template_id)
    _write(rt, template.blob_key, body, settings.template_max_bytes)
    notice_template_upload(rt, template)  # checked as any upload that landed
    return created.template_id


def store_file(rt: Runtime, tenant_id: str, filename: str, body: BinaryIO) -> str:
    settings = rt.settings
    with rt.db.write() as conn:
        max_bytes = tenant_quotas(conn, tenant_id, settings).file_bytes
        created = file_service.create_file_upload(
            conn,
            rt.blobs,
            tenant_id=tenant_id,
            filename=filename or "recipients.csv",
            content_type="text/csv",
            now=rt.clock.now(),
            ttl_seconds=settings.upload_url_ttl_seconds,
            max_bytes=max_bytes,
        )
        file = file_service.get_file(conn, tenant_id, created.file_id)
    size = _write(rt, file.blob_key, body, max_bytes)
    with rt.db.write() as conn:
        file_service.save_file_upload(conn, file, size, rt.clock.now())
    return created.file_id


def _write(rt: Runtime, key: str, body: BinaryIO, max_bytes: int) -> int:
    writer = rt.blobs.writer(key, max_bytes=max_bytes)
    try:
        while chunk := body.read(_CHUNK):
            writer.write(chunk)
        return writer.commit()
    except BaseException:
        writer.abort()
        raise
