"""Use cases for email templates: presign an upload, check it once it lands, look it up."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from postroom.blobs import BlobStore, PresignedUpload
from postroom.blobs.base import upload_too_large
from postroom.db.tables import templates
from postroom.errors import NotFound, Unprocessable
from postroom.ids import new_id
from postroom.templates.limits import RenderLimits
from postroom.templates.pinning import pin_library
from postroom.templates.sandbox import check_template

TEMPLATE_CONTENT_TYPE = "text/html"


@dataclass(frozen=True, slots=True)
class NewTemplate:
    template_id: str
    upload: PresignedUpload


def create_template_upload(
    conn: Connection,
    blobs: BlobStore,
    *,
    tenant_id: str,
    name: str,
    subject: str,
    now: datetime,
    ttl_seconds: int,
    max_bytes: int,
) -> NewTemplate:
    """Record a template awaiting its HTML and return where to PUT it.

    The subject is a template too; one that does not compile is refused here, at once.
    """
    subject_check = check_template("", subject, max_bytes=max_bytes)
    if not subject_check.is_valid:
        raise Unprocessable(
            "The subject is not a valid template: " + subject_check.problems[0].message,
            code="invalid_subject",
            details={"problems": [_problem(p) for p in subject_check.problems]},
        )
    template_id = new_id("tpl")
    key = f"t/{tenant_id}/templates/{template_id}.html"
    conn.execute(
        insert(templates).values(
            id=template_id,
            tenant_id=tenant_id,
            name=name,
            subject=subject,
            status="pending_upload",
            blob_key=key,
            variables=[],
            errors=[],
            created_at=now,
        )
    )
    upload = blobs.presign_put(
        key,
        content_type=TEMPLATE_CONTENT_TYPE,
        max_bytes=max_bytes,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    return NewTemplate(template_id, upload)


def get_template(conn: Connection, tenant_id: str, template_id: str) -> Row[Any]:
    row = conn.execute(
        select(templates).where(templates.c.id == template_id, templates.c.tenant_id == tenant_id)
    ).first()
    if row is None:
        raise NotFound(f"No template {template_id!r}.", code="template_not_found")
    return row


def ready_templates(conn: Connection, tenant_id: str, *, limit: int) -> list[Row[Any]]:
    """The tenant's usable templates, newest first."""
    return list(
        conn.execute(
            select(templates)
            .where(templates.c.tenant_id == tenant_id, templates.c.status == "ready")
            .order_by(templates.c.created_at.desc(), templates.c.id)
            .limit(limit)
        ).all()
    )


def find_template_by_key(conn: Connection, blob_key: str) -> Row[Any] | None:
    return conn.execute(select(templates).where(templates.c.blob_key == blob_key)).first()


def check_template_upload(
    conn: Connection,
    blobs: BlobStore,
    template: Row[Any],
    *,
    max_bytes: int,
    now: datetime,
    limits: RenderLimits | None = None,
) -> dict[str, Any] | None:
    """Check the uploaded HTML (reads only: ``conn`` may be a read transaction): None while
    nothing has landed; an upload over ``max_bytes`` is deleted and refused with 413
    ``upload_too_large``, as the upload itself is where the store can refuse it; else what
    makes the template ``ready`` or ``invalid`` (with reasons). One that goes over a render
    limit (``limits``, default the defaults) even with empty fields is invalid. The templates
    it loads are pinned now, among the tenant's own, and kept in ``dependencies``; its
    variables include theirs."""
    size = blobs.size(template.blob_key)
    if size is None:
        return None
    if size > max_bytes:
        blobs.delete(template.blob_key)
        raise upload_too_large(max_bytes)
    data = blobs.read_bytes(template.blob_key)
    values: dict[str, Any] = {
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "uploaded_at": now,
    }
    try:
        html = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems = [{"line": None, "part": "html", "message": f"not UTF-8: {exc.reason}"}]
        values.update(status="invalid", errors=problems, variables=[])
    else:
        library = pin_library(conn, blobs, template, html)
        check = check_template(
            html, template.subject, max_bytes=max_bytes, limits=limits, library=library
        )
        values.update(
            status="ready" if check.is_valid else "invalid",
            variables=check.variables,
            errors=[_problem(p) for p in check.problems],
            dependencies=dict(library.pins[library.root_id]),
        )
    return values


def save_template_check(conn: Connection, template: Row[Any], checked: dict[str, Any]) -> None:
    """Record what ``check_template_upload`` found. Idempotent: a template that is no longer
    pending is left alone."""
    conn.execute(
        update(templates)
        .where(templates.c.id == template.id, templates.c.status == "pending_upload")
        .values(**checked)
    )


def _problem(problem: Any) -> dict[str, Any]:
    return {"line": problem.line, "part": problem.part, "message": problem.message}
