"""Routes under /api/v1/system: how the platform itself is doing (the transports' circuit
breakers), for any valid API key."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from postroom import __version__
from postroom.api.deps import ApiKeyDep, RuntimeDep
from postroom.api.errors import error_responses
from postroom.api.scopes import needs
from postroom.delivery.breaker import Breaker, breaker_name
from postroom.delivery.breaker_store import all_breakers
from postroom.tenants.service import authenticate

router = APIRouter(
    prefix="/api/v1/system",
    tags=["system"],
    dependencies=[needs("campaigns:read")],
    responses=error_responses(403),
)


class BreakerView(BaseModel):
    transport: str
    state: str  # closed | open | half_open
    failures: int
    last_error: str | None
    retry_at: datetime | None


class SystemStatus(BaseModel):
    version: str
    transport: str
    breakers: list[BreakerView]


@router.get("/status", response_model=SystemStatus, responses=error_responses(401))
def system_status(rt: RuntimeDep, key: ApiKeyDep) -> SystemStatus:
    """The version, the configured transport, and every transport's circuit breaker (a
    transport that never failed is listed as closed)."""
    transport = breaker_name(rt.settings.transport_url)
    with rt.db.read_latest() as conn:
        authenticate(conn, key)
        known = {b.transport: b for b in all_breakers(conn)}
    if transport not in known:
        known[transport] = Breaker(transport)
    return SystemStatus(
        version=__version__,
        transport=transport,
        breakers=[
            BreakerView(
                transport=b.transport,
                state=b.state,
                failures=b.failures,
                last_error=b.last_error,
                retry_at=b.retry_at,
            )
            for _, b in sorted(known.items())
        ],
    )
