"""Routes under /api/v1/templates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from postroom.api.deps import ApiKeyDep, CallerDep, RuntimeDep
from postroom.api.errors import error_responses
from postroom.api.scopes import needs
from postroom.api.uploads import UploadTicket, ticket
from postroom.campaigns.uploads import current_template
from postroom.templates import service
from postroom.tenants.service import authenticate
from postroom.wiretext import OneLine, Text

router = APIRouter(
    prefix="/api/v1/templates",
    tags=["templates"],
    dependencies=[needs("campaigns:read", "templates:write")],
    responses=error_responses(403),
)


class TemplateUploadRequest(BaseModel):
    name: OneLine = Field(min_length=1, max_length=200)
    subject: Text = Field(min_length=1, max_length=2000, description="A template too.")


class TemplateUploadTicket(UploadTicket):
    template_id: str


class TemplateProblemView(BaseModel):
    line: int | None
    part: str
    message: str


class TemplateView(BaseModel):
    template_id: str
    name: str
    subject: str
    status: str
    variables: list[str]
    errors: list[TemplateProblemView]
    dependencies: dict[str, str] = Field(
        description="The templates it extends, includes or imports: each name as written in "
        "it, and the id of the template that name was pinned to when it was uploaded."
    )
    size: int | None
    sha256: str | None
    created_at: datetime


@router.post(
    "/presigned-url",
    status_code=201,
    response_model=TemplateUploadTicket,
    responses=error_responses(401, 422),
)
def create_template_upload(
    body: TemplateUploadRequest, rt: RuntimeDep, caller: CallerDep
) -> dict[str, Any]:
    """Register a template and get a signed URL to PUT its HTML (Jinja2) to."""
    settings = rt.settings
    with rt.db.write() as conn:
        created = service.create_template_upload(
            conn,
            rt.blobs,
            tenant_id=caller.tenant_id,
            name=body.name.strip(),
            subject=body.subject,
            now=rt.clock.now(),
            ttl_seconds=settings.upload_url_ttl_seconds,
            max_bytes=settings.template_max_bytes,
        )
    return {"template_id": created.template_id, **ticket(created.upload)}


@router.get("/{template_id}", response_model=TemplateView, responses=error_responses(401, 404, 413))
def get_template(template_id: str, rt: RuntimeDep, key: ApiKeyDep) -> dict[str, Any]:
    """A template's status (``pending_upload``, ``ready`` or ``invalid``), variables and
    problems. A pending template whose upload has landed is checked now (413
    ``upload_too_large`` for one over the limit, which is deleted)."""
    with rt.db.read_latest() as conn:
        tenant_id = authenticate(conn, key).tenant_id
    template = current_template(rt, tenant_id, template_id)
    return {
        "template_id": template.id,
        "name": template.name,
        "subject": template.subject,
        "status": template.status,
        "variables": template.variables,
        "errors": template.errors,
        "dependencies": template.dependencies or {},
        "size": template.size,
        "sha256": template.sha256,
        "created_at": template.created_at,
    }
