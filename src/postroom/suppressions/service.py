"""Use cases of the suppression list: add and remove by hand, page through it, export it.
Hard bounces, complaints and unsubscribes are added by the event store as they arrive;
erased addresses (postroom.erasure) stay on it as a hash alone."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from postroom.csvcells import neutralised_row
from postroom.errors import BadRequest, NotFound
from postroom.suppressions import store
from postroom.suppressions.erased import erased_key, is_erased_key
from postroom.suppressions.schemas import SuppressionPage, SuppressionView


def add_by_hand(
    conn: Connection,
    tenant_id: str,
    email: str,
    email_key: str,
    now: datetime,
    detail: str | None,
    secret_key: bytes,
) -> tuple[SuppressionView, bool]:
    """Put a checked address on the list; returns its entry and whether it is new. An erased
    address is on it already, and stays a hash."""
    hashed = erased_key(secret_key, tenant_id, email_key)
    if store.find(conn, tenant_id, hashed) is not None:
        return get(conn, tenant_id, hashed), False
    created = store.add(conn, tenant_id, email_key, email, "manual", now, detail)
    return get(conn, tenant_id, email_key), created


def get(conn: Connection, tenant_id: str, email_key: str) -> SuppressionView:
    row = store.find(conn, tenant_id, email_key)
    if row is None:
        raise NotFound("That address is not on the suppression list.", code="suppression_not_found")
    return _view(row)


def remove(conn: Connection, tenant_id: str, email_key: str, secret_key: bytes) -> None:
    """Take an address off the list, whether it is there as itself or erased."""
    keys = (email_key, erased_key(secret_key, tenant_id, email_key))
    if not store.remove(conn, tenant_id, keys):
        raise NotFound("That address is not on the suppression list.", code="suppression_not_found")


def list_page(
    conn: Connection, tenant_id: str, *, cursor: str | None, limit: int
) -> SuppressionPage:
    """In key order; ``next_cursor`` continues after the last one."""
    after = _decode(cursor) if cursor is not None else None
    rows = store.page(conn, tenant_id, after, limit + 1)
    page = [_view(row) for row in rows[:limit]]
    next_cursor = _encode(rows[limit - 1].email_key) if len(rows) > limit else None
    return SuppressionPage(suppressions=page, next_cursor=next_cursor)


def export_csv(conn: Connection, tenant_id: str) -> Iterator[str]:
    """The whole list as CSV (email,reason,detail,created_at), streamed; an erased address
    has an empty email."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["email", "reason", "detail", "created_at"])
    for row in store.every_row(conn, tenant_id):
        writer.writerow(
            neutralised_row(
                [row.email or "", row.reason, row.detail or "", row.created_at.isoformat()]
            )
        )
        if out.tell() > 64 * 1024:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _view(row: Any) -> SuppressionView:
    return SuppressionView(
        email=row.email,
        erased=is_erased_key(row.email_key),
        reason=row.reason,
        detail=row.detail,
        created_at=row.created_at,
    )


def _encode(key: str) -> str:
    return key.encode().hex()


def _decode(cursor: str) -> str:
    try:
        return bytes.fromhex(cursor).decode()
    except ValueError:
        raise BadRequest("The cursor is not one this API gave.", code="invalid_cursor") from None
