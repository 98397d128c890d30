"""Idempotency keys: a retried POST with the same key and body replays the first answer."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from postroom.db.engine import Database
from postroom.db.tables import idempotency_keys
from postroom.errors import BadRequest, Conflict, Unprocessable

#: A request that started this long ago and never finished (its process died) is retried.
STALE_RUNNING_SECONDS = 120
MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Replay:
    status: int
    body: dict[str, Any]


def request_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def begin(
    db: Database, tenant_id: str, key: str, body_hash: str, now: datetime, ttl_seconds: int
) -> Replay | None:
    """Claim ``key`` for this request (None: go ahead) or return the stored answer.

    The claim commits on its own, so a concurrent request with the same key sees it and is
    answered 409 instead of creating a second campaign.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise BadRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
            code="invalid_idempotency_key",
        )
    for _ in range(2):
        try:
            with db.write() as conn:
                _forget_expired(conn, tenant_id, key, now)
                conn.execute(
                    insert(idempotency_keys).values(
                        tenant_id=tenant_id,
                        key=key,
                        request_hash=body_hash,
                        state="running",
                        created_at=now,
                        expires_at=now + timedelta(seconds=ttl_seconds),
                    )
                )
            return None
        except IntegrityError:
            with db.read() as conn:
                row = _row(conn, tenant_id, key)
            if row is None:
                continue
            return _answer_for(row, body_hash, now)
    raise Conflict(
        "The request with this Idempotency-Key is still running.",
        code="idempotency_request_in_progress",
    )


def _row(conn: Connection, tenant_id: str, key: str) -> Any:
    return conn.execute(
        select(idempotency_keys).where(
            idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.key == key
        )
    ).first()


def _forget_expired(conn: Connection, tenant_id: str, key: str, now: datetime) -> None:
    stale = now - timedelta(seconds=STALE_RUNNING_SECONDS)
    conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.tenant_id == tenant_id,
            idempotency_keys.c.key == key,
            (idempotency_keys.c.expires_at < now)
            | ((idempotency_keys.c.state == "running") & (idempotency_keys.c.created_at < stale)),
        )
    )


def _answer_for(row: Any, body_hash: str, now: datetime) -> Replay:
    if row.request_hash != body_hash:
        raise Unprocessable(
            "This Idempotency-Key was used with a different request body.",
            code="idempotency_key_reused",
        )
    if row.state != "done":
        raise Conflict(
            "A request with this Idempotency-Key is still running; retry shortly.",
            code="idempotency_request_in_progress",
        )
    return Replay(status=row.response_status, body=row.response_body)


def finish(conn: Connection, tenant_id: str, key: str, status: int, body: dict[str, Any]) -> None:
    """Store the answer, in the same transaction as the work it describes."""
    conn.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.key == key)
        .values(state="done", response_status=status, response_body=body)
    )


def abandon(db: Database, tenant_id: str, key: str) -> None:
    """Free the key after a failure that changed nothing, so the client can retry."""
    with db.write() as conn:
        conn.execute(
            delete(idempotency_keys).where(
                idempotency_keys.c.tenant_id == tenant_id,
                idempotency_keys.c.key == key,
                idempotency_keys.c.state == "running",
            )
        )
