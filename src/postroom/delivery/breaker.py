"""The circuit breaker of a transport, as pure decisions: when to stop claiming mail, when to
let one probe through, and when the relay counts as back.

Only transport-level failures count (cannot connect, TLS or authentication failure, a
relay-wide 421): a recipient's rejection says nothing about the relay. While the breaker is
open no message is claimed, so none is charged an attempt for the outage.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Admission(StrEnum):
    """What a worker may claim now."""

    BATCH = "batch"  # closed: claim as usual
    PROBE = "probe"  # the cool-down is over: one message tests the relay
    NONE = "none"  # open: claim nothing


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int
    cooldown_seconds: float
    max_cooldown_seconds: float

    def cooldown(self, opened_count: int) -> timedelta:
        """The cool-down doubles with every re-open in a row, up to the cap."""
        seconds = self.cooldown_seconds * 2 ** max(opened_count - 1, 0)
        return timedelta(seconds=min(seconds, self.max_cooldown_seconds))


@dataclass(frozen=True, slots=True)
class Breaker:
    transport: str
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0  # transport-level failures since the last success
    opened_count: int = 0  # opens since the relay last worked
    last_error: str | None = None
    retry_at: datetime | None = None  # open: when a probe may go; half-open: probe deadline
    probe_owner: str | None = None

    def admission(self, now: datetime) -> Admission:
        if self.state == BreakerState.CLOSED:
            return Admission.BATCH
        # Half-open past its deadline: the probing worker died or hung; probe again.
        if self.retry_at is None or self.retry_at <= now:
            return Admission.PROBE
        return Admission.NONE

    def after(
        self,
        *,
        successes: int,
        failures: int,
        last_error: str | None,
        now: datetime,
        policy: BreakerPolicy,
    ) -> Breaker:
        """The breaker after a batch's outcomes: any delivery closes it (the relay works);
        transport-level failures reaching the threshold, or a failed probe, open it."""
        if successes:
            if self.state == BreakerState.CLOSED and self.failures == 0:
                return self
            return Breaker(self.transport)
        if not failures:
            return self
        total = self.failures + failures
        if self.state == BreakerState.HALF_OPEN or total >= policy.failure_threshold:
            opened = self.opened_count + (0 if self.state == BreakerState.OPEN else 1)
            return replace(
                self,
                state=BreakerState.OPEN,
                failures=total,
                opened_count=opened,
                last_error=last_error,
                retry_at=now + policy.cooldown(opened),
                probe_owner=None,
            )
        return replace(self, failures=total, last_error=last_error)


def breaker_name(transport_url: str) -> str:
    """The breaker's key: the transport URL without credentials or options, so every worker
    sending through the same relay shares one breaker and no password is stored."""
    parts = urlsplit(transport_url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path if not host else ''}"
