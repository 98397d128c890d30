"""Wire models of the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="api (an API key), console (a signed-in session) or admin")
    key_id: str | None = Field(
        description="The key used (pr_<key_id>_…), or oauth:<subject> for an OAuth bearer "
        "token; none for admin."
    )
    action: str = Field(description='The call, e.g. "POST /api/v1/campaigns/{campaign_id}/cancel".')
    target: dict[str, Any] = Field(description="The ids the call named, or the one it created.")
    status: int | None = Field(description="The HTTP status answered.")
    client_address: str | None
    request_id: str | None


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_cursor: str | None
