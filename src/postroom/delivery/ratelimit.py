"""Sending rates as pure arithmetic: parsing ``20/s``-style limits, and the generic cell rate
algorithm (GCRA) that decides how many messages may go now and when the next may.

A bucket is one number, its theoretical arrival time (``tat``): the moment by which every
message granted so far would have gone at exactly the configured rate. A message may go now
if that moment is no further ahead than the burst allowance. Granting ``n`` messages moves it
``n / rate`` seconds on. Over any window of ``w`` seconds at most ``rate * (w + burst)``
messages are granted, so with a burst of a quarter second a 10-second window stays within
2.5 % of the rate.
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
class TenantRates:
    """A tenant's own limits, when it has any (``postroom tenant limits``)."""

    rate: float | None = None  # replaces the POSTROOM_TENANT_RATE_LIMIT default
    domains: dict[str, float] | None = None  # applies on top of the global domain limits


@dataclass(frozen=True, slots=True)
class SendingRates:
    """The configured limits, messages per second (0: none)."""

    transport: float
    tenant: float
    domains: dict[str, float]


def transport_bucket(name: str) -> str:
    return f"transport:{name}"


def tenant_bucket(tenant_id: str) -> str:
    return f"tenant:{tenant_id}"


def domain_bucket(domain: str, tenant_id: str | None = None) -> str:
    return f"tenant:{tenant_id}:domain:{domain}" if tenant_id else f"domain:{domain}"


def recipient_domain(address: str) -> str:
    return address.rpartition("@")[2].lower().rstrip(".")
