"""Wire models for the suppression list."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from postroom.wiretext import OneLine, Text


class SuppressionRequest(BaseModel):
    """Body of ``POST /api/v1/suppressions``."""

    model_config = ConfigDict(extra="forbid")
    email: Text = Field(max_length=320)
    detail: OneLine | None = Field(default=None, max_length=500)


class SuppressionView(BaseModel):
    email: str | None = Field(description="null for an erased address, kept only as a hash")
    erased: bool = False
    reason: str = Field(description="hard_bounce, complaint, unsubscribe, manual or erased")
    detail: str | None
    created_at: datetime


class SuppressionPage(BaseModel):
    suppressions: list[SuppressionView]
    next_cursor: str | None
