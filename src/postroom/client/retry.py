"""When to retry a call and how long to wait: exponential backoff with full jitter,
honouring ``Retry-After``."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

BASE_SECONDS = 0.5
CAP_SECONDS = 30.0
# 500 may mean the server did the work and then failed: only safe when repeating is.
ALWAYS_RETRIED = frozenset({429, 502, 503, 504})


def retryable_status(status: int, *, idempotent: bool) -> bool:
    return status in ALWAYS_RETRIED or (idempotent and status == 500)


def backoff(attempt: int, *, rand: random.Random | None = None) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)]; attempt counts from 0."""
    ceiling = min(CAP_SECONDS, BASE_SECONDS * 2**attempt)
    return (rand or random).uniform(0, ceiling)


def retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or an HTTP date);
    None when absent or unreadable. Capped like the backoff."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(CAP_SECONDS, float(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(CAP_SECONDS, max(0.0, seconds))


def delay(attempt: int, retry_after_header: str | None) -> float:
    asked = retry_after(retry_after_header)
    return asked if asked is not None else backoff(attempt)


def next_delay(
    *,
    attempt: int,
    retries: int,
    replayable: bool,
    status: int | None = None,
    retry_after_header: str | None = None,
) -> float | None:
    """Seconds to wait before trying again, or None to stop. ``status`` is None when the
    request failed to connect or timed out; ``replayable`` says whether sending it again
    is safe (idempotent method or an idempotency key, and no streamed body)."""
    if attempt >= retries:
        return None
    if status is None:
        return delay(attempt, None) if replayable else None
    if not retryable_status(status, idempotent=replayable):
        return None
    return delay(attempt, retry_after_header)
