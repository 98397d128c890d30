"""Writing and reading the audit log. There is no update or delete: entries stay."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from postroom.audit.schemas import AuditEntry, AuditPage
from postroom.db.tables import audit_log
from postroom.errors import BadRequest


def record(
    conn: Connection,
    *,
    tenant_id: str,
    at: datetime,
    actor: str,
    action: str,
    target: dict[str, Any],
    key_id: str | None = None,
    status: int | None = None,
    client_address: str | None = None,
    request_id: str | None = None,
) -> None:
    conn.execute(
        insert(audit_log).values(
            tenant_id=tenant_id,
            at=at,
            actor=actor,
            key_id=key_id,
            action=action[:200],
            target=target,
            status=status,
            client_address=(client_address or None) and client_address[:100],
            request_id=request_id,
        )
    )


def page(conn: Connection, tenant_id: str, *, cursor: str | None, limit: int) -> AuditPage:
    """The tenant's entries, newest first; ``next_cursor`` continues to older ones."""
    query = select(audit_log).where(audit_log.c.tenant_id == tenant_id)
    if cursor is not None:
        if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18:
            raise BadRequest("That cursor is not one this API gave out.", code="invalid_cursor")
        query = query.where(audit_log.c.id < int(cursor))
    rows = conn.execute(query.order_by(audit_log.c.id.desc()).limit(limit + 1)).all()
    entries = [
        AuditEntry(
            id=row.id,
            at=row.at,
            actor=row.actor,
            key_id=row.key_id,
            action=row.action,
            target=row.target,
            status=row.status,
            client_address=row.client_address,
            request_id=row.request_id,
        )
        for row in rows[:limit]
    ]
    next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
    return AuditPage(entries=entries, next_cursor=next_cursor)
