"""The audit trail of HTTP calls, and ``GET /api/v1/audit``.

``AuditTrail`` is ASGI middleware: every POST, PUT, PATCH or DELETE made by an authenticated
caller (an API key, or a console session; each sets ``request.state.caller``) is recorded
with its route, the ids it named (or, for a creation, the id it answered), its status, the
client address and the request id. The entry is written before the last byte of the answer
leaves, so a client that reads the log after its call finds it there.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Query
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postroom.api.deps import ApiKeyDep, RuntimeDep
from postroom.api.errors import error_responses
from postroom.api.metrics import route_template
from postroom.api.scopes import needs
from postroom.audit import log as audit
from postroom.audit.schemas import AuditPage
from postroom.runtime import Runtime
from postroom.tenants.service import Caller, authenticate

log = logging.getLogger(__name__)

router = APIRouter(
    prefix="/api/v1/audit",
    tags=["audit"],
    dependencies=[needs("admin")],
    responses=error_responses(403),
)

CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Created resources answer with one of these; the first found is the entry's target.
CREATED_ID_FIELDS = ("transaction_id", "template_id", "file_id", "id")
_KEPT_BODY_BYTES = 64 * 1024


@router.get("", response_model=AuditPage, responses=error_responses(400, 401))
def list_audit(
    rt: RuntimeDep,
    key: ApiKeyDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """The tenant's audit log, newest first; ``next_cursor`` continues to older entries.
    Read-only: there is no call that changes or removes an entry."""
    with rt.db.read_latest() as conn:
        return audit.page(conn, authenticate(conn, key).tenant_id, cursor=cursor, limit=limit)


class AuditTrail:
    def __init__(self, app: ASGIApp, rt: Runtime) -> None:
        self.app = app
        self.rt = rt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in CHANGING_METHODS:
            await self.app(scope, receive, send)
            return
        status: int | None = None
        is_json = False
        body = bytearray()

        async def send_after_recording(message: Message) -> None:
            nonlocal status, is_json
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = dict(message.get("headers", []))
                is_json = headers.get(b"content-type", b"").startswith(b"application/json")
            elif message["type"] == "http.response.body":
                if is_json and len(body) < _KEPT_BODY_BYTES:
                    body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._record(scope, status, bytes(body) if is_json else b"")
            await send(message)

        await self.app(scope, receive, send_after_recording)

    async def _record(self, scope: Scope, status: int | None, body: bytes) -> None:
        state = scope.get("state", {})
        caller = state.get("caller")
        if not isinstance(caller, Caller):
            return  # no tenant to file it under: the call was refused before it knew one
        path = scope.get("path", "")
        # A route may name its target itself, when the path holds what the log must not keep
        # (an address being erased).
        target: dict[str, Any] = state.get("audit_target") or {
            name: str(value) for name, value in (scope.get("path_params") or {}).items()
        }
        created = _created_id(body) if status is not None and status < 300 else None
        if created is not None and not target:
            target["id"] = created
        client = scope.get("client")
        try:
            await anyio.to_thread.run_sync(
                self._write,
                {
                    "tenant_id": caller.tenant_id,
                    "actor": "api" if path.startswith("/api/") else "console",
                    "key_id": caller.key_id,
                    "action": f"{scope['method']} {route_template(scope)}",
                    "target": target,
                    "status": status,
                    "client_address": client[0] if client else None,
                    "request_id": state.get("request_id"),
                },
            )
        except Exception:
            log.exception("the audit entry of %s %s could not be written", scope["method"], path)

    def _write(self, values: dict[str, Any]) -> None:
        with self.rt.db.write() as conn:
            audit.record(conn, at=self.rt.clock.now(), **values)


def _created_id(body: bytes) -> str | None:
    if not body:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    for field in CREATED_ID_FIELDS:
        value = parsed.get(field)
        if isinstance(value, str | int):
            return str(value)
    return None
