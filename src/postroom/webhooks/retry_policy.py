"""When a failed delivery is tried again: exponential backoff with jitter, never past the
retry window (24 h by default) counted from the event; after that it has failed for good."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float
    cap_seconds: float
    window_seconds: float

    def next_attempt(
        self,
        attempts: int,
        created_at: datetime,
        now: datetime,
        *,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> datetime | None:
        """The time of the next try after ``attempts`` failed ones (the last one at the
        window's end), or None when the window is spent. The delay doubles with each
        attempt up to the cap; a random half of it is jitter, so endpoints that come back
        are not hit by every retry at once. A receiver's ``Retry-After`` is honoured as a
        minimum."""
        exponential = min(self.cap_seconds, self.base_seconds * 2 ** max(attempts - 1, 0))
        delay = exponential * (0.5 + 0.5 * (rng or random).random())
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap_seconds))
        deadline = created_at + timedelta(seconds=self.window_seconds)
        if now >= deadline:
            return None
        # The last try falls at the end of the window rather than not at all.
        return min(now + timedelta(seconds=delay), deadline)
