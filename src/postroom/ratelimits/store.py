"""The rate-limit buckets in the database, so that a limit holds across every worker process
sharing it: a claim locks the buckets it draws on (in key order, so claims never deadlock),
decides, and writes them back in its own transaction. An API request instead takes one from
its key's bucket in a single statement (``take_one``), since it runs on every request."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, bindparam, case, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from postroom.db.tables import rate_limits


def lock_buckets(conn: Connection, keys: Iterable[str]) -> dict[str, float]:
    """Each key's ``tat`` (0 for a bucket never used), locked until the transaction ends."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    found = _locked(conn, wanted)
    missing = [key for key in wanted if key not in found]
    if missing:
        for key in missing:
            try:
                with conn.begin_nested():
                    conn.execute(insert(rate_limits).values(key=key, tat=0.0))
            except IntegrityError:  # another worker created it meanwhile
                pass
        found.update(_locked(conn, missing))
    return found


def read_tat(conn: Connection, key: str) -> float:
    """A bucket's ``tat`` without locking it (0 for a bucket never used)."""
    tat = conn.execute(select(rate_limits.c.tat).where(rate_limits.c.key == key)).scalar()
    return float(tat) if tat is not None else 0.0


def save_buckets(conn: Connection, tats: dict[str, float]) -> None:
    if tats:
        conn.execute(
            update(rate_limits)
            .where(rate_limits.c.key == bindparam("k"))
            .values(tat=bindparam("t")),
            [{"k": key, "t": tat} for key, tat in sorted(tats.items())],
        )


def _locked(conn: Connection, keys: list[str]) -> dict[str, float]:
    rows = conn.execute(
        select(rate_limits.c.key, rate_limits.c.tat)
        .where(rate_limits.c.key.in_(keys))
        .order_by(rate_limits.c.key)
        .with_for_update()
    )
    return {key: tat for key, tat in rows}


def take_one(
    conn: Connection, key: str, *, now: float, interval_seconds: float, latest_tat: float
) -> float | None:
    """Charge one to a bucket if its ``tat`` is at most ``latest_tat``, creating it when new;
    returns the ``tat`` after the charge, or None when refused (nothing changed).

    One upsert statement, so it needs no transaction of its own: the row is locked only
    while the statement runs (or until the caller's transaction ends, inside one)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    moved_on = case((rate_limits.c.tat > now, rate_limits.c.tat), else_=now) + interval_seconds
    statement = (
        dialect.insert(rate_limits)
        .values(key=key, tat=now + interval_seconds)
        .on_conflict_do_update(
            index_elements=[rate_limits.c.key],
            set_={"tat": moved_on},
            where=rate_limits.c.tat <= latest_tat,
        )
        .returning(rate_limits.c.tat)
    )
    tat = conn.execute(statement).scalar()
    return float(tat) if tat is not None else None
