"""When to try a transient failure again: exponential backoff with full jitter, within a
time budget counted from the message's first attempt."""

from __future__ import annotations

import random
from datetime import datetime, timedelta


def next_attempt_at(
    attempts: int, now: datetime, *, base_seconds: float, cap_seconds: float
) -> datetime:
    """After ``attempts`` real attempts, wait a random time up to base * 2^(attempts-1),
    capped, and never less than one second (full jitter spreads a failed batch out)."""
    ceiling = min(cap_seconds, base_seconds * 2 ** max(attempts - 1, 0))
    return now + timedelta(seconds=max(1.0, random.uniform(0, ceiling)))


def next_retry_at(
    attempts: int,
    first_attempt_at: datetime | None,
    now: datetime,
    *,
    base_seconds: float,
    cap_seconds: float,
    budget_seconds: float,
) -> datetime | None:
    """When to try again, or None when the budget is spent (the message then fails with
    ``retries_exhausted``). The last retry is moved up to the budget's end rather than
    dropped, so every message gets its attempt at the deadline."""
    deadline = (first_attempt_at or now) + timedelta(seconds=budget_seconds)
    if now >= deadline:
        return None
    retry_at = next_attempt_at(attempts, now, base_seconds=base_seconds, cap_seconds=cap_seconds)
    return min(retry_at, deadline)
