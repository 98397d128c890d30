"""Routes that need no API key: health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from postroom import __version__
from postroom.api.deps import RuntimeDep

router = APIRouter(tags=["public"])


@router.get("/healthz")
def healthz(rt: RuntimeDep) -> dict[str, Any]:
    """Liveness and database reachability."""
    with rt.db.read() as conn:
        conn.execute(text("SELECT 1"))
    return {"status": "ok", "version": __version__}
