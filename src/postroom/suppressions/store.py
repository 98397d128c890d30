"""The suppression list's SQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select
from sqlalchemy.exc import IntegrityError

from postroom.db.tables import suppressions
from postroom.suppressions.erased import (
    ERASED_PREFIX,
    ERASED_PREFIX_END,
    erased_key,
    is_erased_key,
)

#: Why an address is on the list.
REASONS = ("hard_bounce", "complaint", "unsubscribe", "manual", "erased")
# Keys per IN list: well below every database's limit on bound parameters.
_KEYS_PER_QUERY = 1000


def add(
    conn: Connection,
    tenant_id: str,
    email_key: str,
    email: str | None,
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
                    email=None if is_erased_key(email_key) else email,
                    reason=reason,
                    detail=detail,
                    created_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


def remove(conn: Connection, tenant_id: str, email_keys: Iterable[str]) -> bool:
    """Take every one of these keys off the list; False if none was on it."""
    return (
        conn.execute(
            delete(suppressions).where(
                suppressions.c.tenant_id == tenant_id,
                suppressions.c.email_key.in_(sorted(set(email_keys))),
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


def listed_keys(
    conn: Connection, tenant_id: str, email_keys: Iterable[str], secret_key: bytes
) -> set[str]:
    """Which of these keys the tenant's list holds, as an address or as an erased one."""
    hashed = {erased_key(secret_key, tenant_id, key): key for key in set(email_keys)}
    found = _present(conn, tenant_id, [*hashed.values(), *hashed])
    return {hashed.get(key, key) for key in found}


def erased_among(
    conn: Connection, tenant_id: str, email_keys: Iterable[str], secret_key: bytes
) -> set[str]:
    """Which of these keys the tenant erased (each is hashed and looked up)."""
    hashed = {erased_key(secret_key, tenant_id, key): key for key in set(email_keys)}
    return {hashed[key] for key in _present(conn, tenant_id, list(hashed))}


def has_erased(conn: Connection, tenant_id: str) -> bool:
    """Whether the tenant erased any address (a range of the primary key: cheap)."""
    return (
        conn.execute(
            select(suppressions.c.email_key)
            .where(
                suppressions.c.tenant_id == tenant_id,
                suppressions.c.email_key >= ERASED_PREFIX,
                suppressions.c.email_key < ERASED_PREFIX_END,
            )
            .limit(1)
        ).first()
        is not None
    )


def _present(conn: Connection, tenant_id: str, email_keys: list[str]) -> set[str]:
    wanted = sorted(set(email_keys))
    found: set[str] = set()
    for start in range(0, len(wanted), _KEYS_PER_QUERY):
        found.update(
            conn.execute(
                select(suppressions.c.email_key).where(
                    suppressions.c.tenant_id == tenant_id,
                    suppressions.c.email_key.in_(wanted[start : start + _KEYS_PER_QUERY]),
                )
            ).scalars()
        )
    return found


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
