"""The suppression list's SQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select
from sqlalchemy.exc import IntegrityError

from postroom.db.tables import suppressions

#: Why an address is on the list.
REASONS = ("hard_bounce", "complaint", "unsubscribe", "manual")


def add(
    conn: Connection,
    tenant_id: str,
    email_key: str,
    email: str,
    reason: str,
    now: datetime,
    detail: str | None = None,
) -> bool:
    """Put an address on the list; False if it was there already (the first reason stays)."""
    try:
        with conn.begin_nested():
            conn.execute(
                insert(suppressions).values(
                    tenant_id=tenant_id,
                    email_key=email_key,
                    email=email,
                    reason=reason,
                    detail=detail,
                    created_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


def remove(conn: Connection, tenant_id: str, email_key: str) -> bool:
    return (
        conn.execute(
            delete(suppressions).where(
                suppressions.c.tenant_id == tenant_id, suppressions.c.email_key == email_key
            )
        ).rowcount
        > 0
    )


def find(conn: Connection, tenant_id: str, email_key: str) -> Row[Any] | None:
    return conn.execute(
        select(suppressions).where(
            suppressions.c.tenant_id == tenant_id, suppressions.c.email_key == email_key
        )
    ).first()


def page(conn: Connection, tenant_id: str, after_key: str | None, limit: int) -> list[Row[Any]]:
    query = select(suppressions).where(suppressions.c.tenant_id == tenant_id)
    if after_key is not None:
        query = query.where(suppressions.c.email_key > after_key)
    return list(conn.execute(query.order_by(suppressions.c.email_key).limit(limit)).all())


def listed_keys(conn: Connection, tenant_id: str, email_keys: Iterable[str]) -> set[str]:
    """Which of these keys the tenant's list holds."""
    wanted = sorted(set(email_keys))
    if not wanted:
        return set()
    return set(
        conn.execute(
            select(suppressions.c.email_key).where(
                suppressions.c.tenant_id == tenant_id, suppressions.c.email_key.in_(wanted)
            )
        ).scalars()
    )


def every_row(conn: Connection, tenant_id: str, batch: int = 2000) -> Iterator[Row[Any]]:
    after: str | None = None
    while rows := page(conn, tenant_id, after, batch):
        yield from rows
        after = rows[-1].email_key


def has_any(conn: Connection, tenant_id: str) -> bool:
    return (
        conn.execute(
            select(suppressions.c.email_key).where(suppressions.c.tenant_id == tenant_id).limit(1)
        ).first()
        is not None
    )


def keys_of_tenant(tenant_id: str) -> Any:
    """A subquery of the tenant's suppressed keys, for set-based statements."""
    return select(suppressions.c.email_key).where(suppressions.c.tenant_id == tenant_id)
