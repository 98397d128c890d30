"""The generic cell rate algorithm (GCRA) as pure arithmetic: how much a bucket allows now,
where it stands after a grant, and the budget an API key's bucket reports.

A bucket is one number, its theoretical arrival time (``tat``): the moment by which every
unit granted so far would have gone at exactly the configured rate. A unit may go now if that
moment is no further ahead than the burst allowance. Granting ``n`` units moves it
``n / rate`` seconds on. Over any window of ``w`` seconds at most ``rate * (w + burst)``
units are granted, so with a burst of a quarter second a 10-second window stays within 2.5 %
of the rate. Sending counts messages; the API counts requests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: How far ahead of the configured rate a bucket may run (at least one message).
BURST_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class Allowance:
    """What a bucket allows at one moment."""

    count: int  # messages that may go now (a large number when unlimited)
    wait_seconds: float  # when none may: how long until the next one may


UNLIMITED = 1 << 30


def allowance(tat: float, now: float, rate: float) -> Allowance:
    """How many messages a bucket with ``tat`` allows at ``now`` (epoch seconds). A rate of
    0 means no limit, except that a pushed-back ``tat`` (the provider throttled us) still
    holds everything until it has passed."""
    if rate <= 0:
        return Allowance(UNLIMITED, 0.0) if tat <= now else Allowance(0, tat - now)
    burst = max(BURST_SECONDS, 1.0 / rate)
    ahead = max(tat, now) - now
    count = math.floor((burst - ahead) * rate + 1e-9)
    if count > 0:
        return Allowance(count, 0.0)
    return Allowance(0, ahead - burst + 1.0 / rate)


def after_granting(tat: float, now: float, rate: float, count: int) -> float:
    """The bucket's ``tat`` once ``count`` more messages were granted at ``now``."""
    if rate <= 0 or count <= 0:
        return tat
    return max(tat, now) + count / rate


@dataclass(frozen=True, slots=True)
class RequestBudget:
    """What an API key's bucket says after one request: the figures of the RateLimit headers.

    A key's bucket is the same GCRA with a burst counted in requests: a request is let
    through when the bucket's ``tat`` is at most ``(burst - 1) / rate`` seconds ahead of now
    (``latest_tat``), and moves it ``1 / rate`` on.
    """

    limit: int  # the burst: requests that may come at once after a quiet spell
    remaining: int  # requests that may come now
    reset_seconds: float  # until the whole burst is available again
    retry_after_seconds: float  # 0 when this request was let through


#: Epoch seconds as floats are exact to about 0.2 microseconds: differences within this much
#: are rounding, not time.
ROUNDING_SECONDS = 1e-6


def latest_tat(now: float, rate: float, burst: int) -> float:
    """The furthest ahead a key's ``tat`` may be for one more request to go now."""
    return now + (burst - 1) / rate + ROUNDING_SECONDS


def request_budget(
    tat: float, now: float, rate: float, burst: int, *, granted: bool
) -> RequestBudget:
    """The budget at ``now`` of a bucket whose ``tat`` is as it stands after the request
    (moved on when ``granted``, as it was when refused)."""
    ahead = max(0.0, tat - now)
    if not granted:
        wait = max(ROUNDING_SECONDS, tat - latest_tat(now, rate, burst))
        return RequestBudget(burst, 0, ahead, wait)
    remaining = math.floor(burst - (ahead - ROUNDING_SECONDS) * rate)
    return RequestBudget(burst, max(0, min(burst, remaining)), ahead, 0.0)
