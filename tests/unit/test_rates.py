"""Rates as written in settings, and the GCRA arithmetic, on a virtual clock."""

from __future__ import annotations

import random

import pytest

from postroom.config import load_settings
from postroom.errors import ConfigError
from postroom.ratelimits.gcra import (
    UNLIMITED,
    after_granting,
    allowance,
    latest_tat,
    request_budget,
)
from postroom.rates import parse_domain_rates, parse_rate


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("20", 20.0),
        ("20/s", 20.0),
        (" 600 / m ", 10.0),
        ("3600/h", 1.0),
        ("0", 0.0),
        ("2.5/s", 2.5),
    ],
)
def test_rates_are_read_as_people_write_them(text: str, per_second: float) -> None:
    assert parse_rate(text) == per_second


@pytest.mark.parametrize("text", ["", "fast", "-1/s", "10/d", "10/s/s", "1e3"])
def test_a_bad_rate_says_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match="20/s"):
        parse_rate(text)


def test_domain_rates_are_a_list() -> None:
    assert parse_domain_rates("gmail.com=20/s, Yahoo.COM.=600/m,") == {
        "gmail.com": 20.0,
        "yahoo.com": 10.0,
    }
    for bad in ("gmail.com", "=20/s", "a@gmail.com=1", "gmail.com=fast"):
        with pytest.raises(ValueError):
            parse_domain_rates(bad)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("POSTROOM_RATE_LIMIT", "lots"),
        ("POSTROOM_TENANT_RATE_LIMIT", "5/d"),
        ("POSTROOM_DOMAIN_RATE_LIMITS", "gmail.com"),
    ],
)
def test_a_bad_rate_setting_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert raised.value.variable == variable


def test_no_limit_allows_everything_unless_paused() -> None:
    assert allowance(0.0, 100.0, 0.0).count == UNLIMITED
    paused = allowance(102.0, 100.0, 0.0)
    assert (paused.count, paused.wait_seconds) == (0, 2.0)


@pytest.mark.parametrize("rate", [0.5, 2.0, 20.0, 333.0])
def test_claims_at_random_moments_never_beat_the_rate_and_keep_up_with_it(rate: float) -> None:
    # Workers claim at random moments, or as soon as the bucket says they may.
    rng = random.Random(7)
    tat, now, granted = 0.0, 1000.0, []
    while now < 1060.0:
        allowed = allowance(tat, now, rate)
        if allowed.count:
            take = min(allowed.count, rng.randint(1, 50))
            tat = after_granting(tat, now, rate, take)
            granted += [now] * take
            now += rng.uniform(0, 0.02)
        else:
            now += allowed.wait_seconds if rng.random() < 0.7 else rng.uniform(0, 0.3)
    for start in range(1000, 1050):
        in_window = sum(1 for at in granted if start <= at < start + 10)
        assert in_window <= rate * 10 * 1.05 + 1
        assert in_window >= rate * 10 * 0.95 - 1


def test_an_api_keys_budget_counts_down_the_burst_and_says_when_to_come_back() -> None:
    now, rate, burst = 1_800_000_000.0, 5.0, 2
    tat = now + 1 / rate  # the first request of a quiet key
    first = request_budget(tat, now, rate, burst, granted=True)
    assert (first.limit, first.remaining, first.retry_after_seconds) == (2, 1, 0.0)
    assert abs(first.reset_seconds - 0.2) < 1e-6
    tat += 1 / rate
    assert request_budget(tat, now, rate, burst, granted=True).remaining == 0
    assert tat > latest_tat(now, rate, burst)  # a third would be refused...
    refused = request_budget(tat, now, rate, burst, granted=False)
    assert refused.remaining == 0 and abs(refused.retry_after_seconds - 0.2) < 1e-5
    later = now + 0.2
    assert tat <= latest_tat(later, rate, burst)  # ...until one interval has passed
