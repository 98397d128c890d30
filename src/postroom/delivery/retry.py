"""When to try a transient failure again: exponential backoff with full jitter."""

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
