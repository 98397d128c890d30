"""Request dependencies: the runtime, the presented API key and the authenticated caller.

Every synchronous step of a request costs a hop to the thread pool (about 0.3 ms of CPU
here), so the read endpoints take ``ApiKeyDep``, which only reads the header on the event
loop, and resolve the key with ``authenticate`` on the connection of their own query: one
hop and one connection per read. A read with no key is refused before anything else; one
with an unknown key and a malformed query is answered 422 before 401, which tells nothing
that /openapi.json does not. Writes take ``CallerDep`` and so authenticate before their body
is looked at.

With OAuth on, a presented credential shaped like a JWT (and not like an API key) is checked
here, in the thread pool since it may fetch the issuer's keys, and handed on as the
``BearerToken`` it holds; ``authenticate`` then finds its tenant and checks its scopes.
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from postroom.oauth import BearerToken, is_token_shaped
from postroom.runtime import Runtime
from postroom.tenants.keys import claims_to_be_key
from postroom.tenants.service import Caller, authenticate, require_key

_bearer = HTTPBearer(
    auto_error=False,
    description="Authorization: Bearer <api key>, or an OAuth 2.0 access token (a JWT from "
    "the configured issuer) where OAuth is on",
)
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def get_api_key(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> str | BearerToken:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, not yet checked
    (or an OAuth token, checked); a request without one is refused here."""
    presented = require_key(bearer.credentials if bearer is not None else api_key)
    tokens = request.app.state.runtime.oauth
    if tokens is None or claims_to_be_key(presented) or not is_token_shaped(presented):
        return presented
    token: BearerToken = await anyio.to_thread.run_sync(tokens.verify, presented)
    return token


def get_caller(
    request: Request,
    rt: Annotated[Runtime, Depends(get_runtime)],
    presented: Annotated[str | BearerToken, Depends(get_api_key)],
) -> Caller:
    """The tenant behind the presented key (kept in the request's state for the audit log)."""
    with rt.db.read() as conn:
        caller = authenticate(conn, presented)
    request.state.caller = caller
    return caller


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ApiKeyDep = Annotated[str | BearerToken, Depends(get_api_key)]
CallerDep = Annotated[Caller, Depends(get_caller)]
