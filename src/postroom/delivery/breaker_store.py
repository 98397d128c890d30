"""The circuit breakers' shared state in the database, so that every worker process sending
through one relay stops, probes and resumes together."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from sqlalchemy import Connection, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from postroom.db.tables import breakers
from postroom.delivery.breaker import Breaker, BreakerPolicy, BreakerState


def read_breaker(conn: Connection, transport: str, *, lock: bool = False) -> Breaker:
    query = select(breakers).where(breakers.c.transport == transport)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _breaker(row) if row is not None else Breaker(transport)


def all_breakers(conn: Connection) -> list[Breaker]:
    return [_breaker(row) for row in conn.execute(select(breakers).order_by(breakers.c.transport))]


def take_probe(
    conn: Connection, transport: str, worker_id: str, now: datetime, deadline: datetime
) -> bool:
    """Become the one worker that tests the relay; False if another got there first."""
    return (
        conn.execute(
            update(breakers)
            .where(
                breakers.c.transport == transport,
                breakers.c.state != BreakerState.CLOSED,
                breakers.c.retry_at <= now,
            )
            .values(
                state=BreakerState.HALF_OPEN,
                probe_owner=worker_id,
                retry_at=deadline,
                updated_at=now,
            )
        ).rowcount
        == 1
    )


def record_results(
    conn: Connection,
    transport: str,
    *,
    successes: int,
    failures: int,
    last_error: str | None,
    now: datetime,
    policy: BreakerPolicy,
) -> tuple[Breaker, Breaker]:
    """Apply a batch's outcomes; returns the breaker before and after. Writes only when it
    changes (the common case, a closed breaker and a good batch, costs one read)."""

    def apply(breaker: Breaker) -> Breaker:
        return breaker.after(
            successes=successes, failures=failures, last_error=last_error, now=now, policy=policy
        )

    seen = read_breaker(conn, transport)
    if apply(seen) == seen:
        return seen, seen
    current = read_breaker(conn, transport, lock=True)
    updated = apply(current)
    if updated != current:
        _save(conn, updated, now)
    return current, updated


def _save(conn: Connection, breaker: Breaker, now: datetime) -> None:
    values = {**asdict(breaker), "updated_at": now}
    if conn.execute(
        update(breakers).where(breakers.c.transport == breaker.transport).values(values)
    ).rowcount:
        return
    try:
        with conn.begin_nested():
            conn.execute(insert(breakers).values(values))
    except IntegrityError:  # another worker created it meanwhile: theirs is as good
        pass


def _breaker(row: Row[object]) -> Breaker:
    return Breaker(
        transport=row.transport,
        state=BreakerState(row.state),
        failures=row.failures,
        opened_count=row.opened_count,
        last_error=row.last_error,
        retry_at=row.retry_at,
        probe_owner=row.probe_owner,
    )
