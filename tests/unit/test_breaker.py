"""The circuit breaker's decisions, and the retry budget, on a virtual clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from postroom.delivery.breaker import (
    Admission,
    Breaker,
    BreakerPolicy,
    BreakerState,
    breaker_name,
)
from postroom.delivery.retry import next_retry_at

POLICY = BreakerPolicy(failure_threshold=5, cooldown_seconds=30, max_cooldown_seconds=600)
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def fail(breaker: Breaker, n: int, at: datetime) -> Breaker:
    return breaker.after(
        successes=0, failures=n, last_error="connection refused", now=at, policy=POLICY
    )


def succeed(breaker: Breaker, at: datetime) -> Breaker:
    return breaker.after(successes=1, failures=0, last_error=None, now=at, policy=POLICY)


def test_failures_below_the_threshold_keep_it_closed_and_a_success_resets_them() -> None:
    breaker = fail(Breaker("smtp://relay:25"), 4, T0)
    assert breaker.state == BreakerState.CLOSED and breaker.failures == 4
    assert breaker.admission(T0) == Admission.BATCH
    assert succeed(breaker, T0) == Breaker("smtp://relay:25")
    assert fail(breaker, 1, T0).state == BreakerState.OPEN


def test_open_admits_nothing_until_the_cooldown_then_one_probe() -> None:
    breaker = fail(Breaker("smtp://relay:25"), 5, T0)
    assert breaker.state == BreakerState.OPEN
    assert breaker.admission(T0 + timedelta(seconds=29)) == Admission.NONE
    assert breaker.admission(T0 + timedelta(seconds=30)) == Admission.PROBE


def test_a_failed_probe_reopens_with_a_doubled_cooldown_up_to_the_cap() -> None:
    breaker = fail(Breaker("smtp://relay:25"), 5, T0)
    waits = []
    now = T0
    for _ in range(8):
        assert breaker.retry_at is not None
        now = breaker.retry_at
        probing = Breaker(
            breaker.transport,
            BreakerState.HALF_OPEN,
            breaker.failures,
            breaker.opened_count,
            breaker.last_error,
            now + timedelta(seconds=300),
            "w1",
        )
        breaker = fail(probing, 1, now)
        assert breaker.state == BreakerState.OPEN
        waits.append((breaker.retry_at - now).total_seconds())  # type: ignore[operator]
    assert waits == [60, 120, 240, 480, 600, 600, 600, 600]


def test_a_ten_minute_outage_ends_closed_with_no_message_blamed() -> None:
    # Workers fail whole batches while the relay is down, probe on each cool-down, and the
    # first probe after the relay is back closes the breaker: nothing fails for the outage.
    breaker, now, outage_ends = Breaker("smtp://relay:25"), T0, T0 + timedelta(minutes=10)
    probes = 0
    while breaker.state != BreakerState.CLOSED or now < outage_ends:
        admission = breaker.admission(now)
        if admission == Admission.NONE:
            now += timedelta(seconds=1)
            continue
        if admission == Admission.PROBE:  # what breaker_store.take_probe writes
            probes += 1
            breaker = replace(breaker, state=BreakerState.HALF_OPEN, probe_owner="w1")
        relay_up = now >= outage_ends
        breaker = succeed(breaker, now) if relay_up else fail(breaker, 200, now)
        if relay_up:
            break
    assert breaker.state == BreakerState.CLOSED
    assert now - outage_ends <= timedelta(seconds=POLICY.max_cooldown_seconds)
    assert 3 <= probes <= 8


def test_a_probe_that_never_reports_is_retried_after_its_deadline() -> None:
    probing = Breaker(
        "smtp://relay:25", BreakerState.HALF_OPEN, 5, 1, "x", T0 + timedelta(seconds=300), "dead"
    )
    assert probing.admission(T0) == Admission.NONE
    assert probing.admission(T0 + timedelta(seconds=300)) == Admission.PROBE


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("smtp://user:secret@relay.example:587?tls=starttls", "smtp://relay.example:587"),
        ("smtp://127.0.0.1:2525", "smtp://127.0.0.1:2525"),
        ("capture://var/outbox", "capture://var"),
        ("ses://eu-west-1?configuration_set=x", "ses://eu-west-1"),
    ],
)
def test_the_breaker_name_never_holds_credentials(url: str, name: str) -> None:
    assert breaker_name(url) == name


def test_retries_stay_inside_the_budget_and_stop_after_it() -> None:
    budget = 3 * 24 * 3600.0
    first = T0
    for attempts in range(1, 60):
        now = first + timedelta(hours=attempts)
        retry_at = next_retry_at(
            attempts, first, now, base_seconds=300, cap_seconds=3600, budget_seconds=budget
        )
        if now >= first + timedelta(seconds=budget):
            assert retry_at is None
        else:
            assert retry_at is not None
            assert (
                now < retry_at <= min(now + timedelta(hours=1), first + timedelta(seconds=budget))
            )
