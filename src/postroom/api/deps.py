"""Request dependencies: the runtime and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from postroom.runtime import Runtime
from postroom.tenants.service import Caller, authenticate

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <api key>")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def get_caller(
    rt: Annotated[Runtime, Depends(get_runtime)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> Caller:
    """The tenant behind ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    presented = bearer.credentials if bearer is not None else api_key
    with rt.db.read() as conn:
        return authenticate(conn, presented)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
CallerDep = Annotated[Caller, Depends(get_caller)]
