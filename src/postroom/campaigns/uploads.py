"""Noticing that the template or file a campaign is made from has landed in the blob store.

With the local store the signed PUT notices its upload at once; with S3 the client uploads
straight to the bucket, so Postroom notices when a template or file is looked at or used, or
when S3 says so. Each check does its blob I/O outside any write transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from postroom.errors import NotFound
from postroom.files import service as file_service
from postroom.runtime import Runtime
from postroom.templates import service as template_service
from postroom.templates.limits import RenderLimits
from postroom.tenants.quotas import tenant_quotas


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
    """Check and record a pending template's upload if it has landed (the templates it loads
    are looked up in a read transaction); True when the template's status may have changed."""
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
    """Record a pending file's upload if it has landed (refusing one over the tenant's size
    quota); True when the file's status may have changed."""
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


def current_template(rt: Runtime, tenant_id: str, template_id: str) -> Row[Any]:
    """The tenant's template as it stands once a landed upload is noticed (404 if unknown)."""
    with rt.db.read_latest() as conn:
        template = template_service.get_template(conn, tenant_id, template_id)
    if not notice_template_upload(rt, template):
        return template
    with rt.db.read_latest() as conn:
        return template_service.get_template(conn, tenant_id, template_id)


def current_file(rt: Runtime, tenant_id: str, file_id: str) -> Row[Any]:
    """The tenant's file as it stands once a landed upload is noticed (404 if unknown)."""
    with rt.db.read_latest() as conn:
        file = file_service.get_file(conn, tenant_id, file_id)
    if not notice_file_upload(rt, file):
        return file
    with rt.db.read_latest() as conn:
        return file_service.get_file(conn, tenant_id, file_id)


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
