"""Routes under /api/v1/suppressions: the tenant's suppression list."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse

from postroom.api.deps import ApiKeyDep, CallerDep, RuntimeDep
from postroom.api.errors import error_responses
from postroom.api.scopes import needs
from postroom.errors import Unprocessable
from postroom.files.addresses import Address, check_address
from postroom.runtime import Runtime
from postroom.suppressions import service
from postroom.suppressions.schemas import SuppressionPage, SuppressionRequest, SuppressionView
from postroom.tenants.service import authenticate

router = APIRouter(
    prefix="/api/v1/suppressions",
    tags=["suppressions"],
    dependencies=[needs("campaigns:read", "suppressions:write")],
    responses=error_responses(403),
)


@router.get("", response_model=SuppressionPage, responses=error_responses(400, 401))
def list_suppressions(
    rt: RuntimeDep,
    key: ApiKeyDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """The list in address order; ``next_cursor`` continues."""
    with rt.db.read_latest() as conn:
        tenant_id = authenticate(conn, key).tenant_id
        page = service.list_page(conn, tenant_id, cursor=cursor, limit=limit)
    return Response(page.model_dump_json(), media_type="application/json")


@router.post(
    "",
    status_code=201,
    response_model=SuppressionView,
    responses={200: {"description": "already on the list"}, **error_responses(401, 422)},
)
def add_suppression(body: SuppressionRequest, rt: RuntimeDep, caller: CallerDep) -> JSONResponse:
    """Put an address on the list: no campaign mails it again (201; 200 if it was there)."""
    address = _checked(body.email)
    with rt.db.write() as conn:
        view, created = service.add_by_hand(
            conn,
            caller.tenant_id,
            address.email,
            address.key,
            rt.clock.now(),
            body.detail,
            rt.secret_key,
        )
    return JSONResponse(view.model_dump(mode="json"), status_code=201 if created else 200)


@router.delete("/{email}", status_code=204, responses=error_responses(401, 404))
def remove_suppression(email: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    """Take an address off the list (an erased one too); later campaigns may mail it again."""
    checked = check_address(email)
    email_key = checked.key if isinstance(checked, Address) else email.strip().lower()
    with rt.db.write() as conn:
        service.remove(conn, caller.tenant_id, email_key, rt.secret_key)
    return Response(status_code=204)


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, **error_responses(401)},
)
def export_suppressions(rt: RuntimeDep, key: ApiKeyDep) -> StreamingResponse:
    """The whole list as CSV: email,reason,detail,created_at."""
    with rt.db.read() as conn:
        tenant_id = authenticate(conn, key).tenant_id
    return StreamingResponse(
        _export(rt, tenant_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="suppressions.csv"'},
    )


def _export(rt: Runtime, tenant_id: str) -> Iterator[str]:
    with rt.db.read() as conn:
        yield from service.export_csv(conn, tenant_id)


def _checked(email: str) -> Address:
    checked = check_address(email)
    if not isinstance(checked, Address):
        raise Unprocessable(checked.detail, code="invalid_email", details={"field": "email"})
    return checked
