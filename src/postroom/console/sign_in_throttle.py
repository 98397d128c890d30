"""At most ATTEMPTS_PER_MINUTE console sign-ins a minute from one client address, counted in
the rate-limit buckets every process shares (``signin:<address>``), so that keys cannot be
tried at the speed of the network. Every attempt counts, good or bad: a person signs in a
few times a day, and a flood of good keys is a flood all the same."""

from __future__ import annotations

import math

from postroom.ratelimits.gcra import ROUNDING_SECONDS, latest_tat
from postroom.ratelimits.store import read_tat, take_one
from postroom.runtime import Runtime

ATTEMPTS_PER_MINUTE = 10


def bucket_key(client_address: str | None) -> str:
    return f"signin:{client_address or 'unknown'}"


def seconds_to_wait(rt: Runtime, client_address: str | None) -> int:
    """Charge one sign-in attempt from ``client_address``: 0 when it may go now, else how
    many seconds until one may (nothing is charged then)."""
    rate = ATTEMPTS_PER_MINUTE / 60.0
    now = rt.clock.now().timestamp()
    latest = latest_tat(now, rate, ATTEMPTS_PER_MINUTE)
    key = bucket_key(client_address)
    with rt.db.write() as conn:
        if take_one(conn, key, now=now, interval_seconds=1.0 / rate, latest_tat=latest):
            return 0
        ahead = read_tat(conn, key) - latest
    return max(1, math.ceil(ahead - ROUNDING_SECONDS))
