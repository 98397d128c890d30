"""The SDK's retry policy: backoff bounds, Retry-After parsing, which answers retry."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from postroom.client.retry import backoff, next_delay, retry_after


def test_backoff_is_full_jitter_within_a_capped_exponential() -> None:
    rand = random.Random(7)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (3, 4.0), (10, 30.0)]:
        samples = [backoff(attempt, rand=rand) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 29, 1, 0, 0, tzinfo=UTC)
    assert retry_after("3") == 3.0
    assert retry_after("3600") == 30.0
    assert retry_after("Sun, 29 Nov 2026 01:00:07 GMT", now=now) == 7.0
    assert retry_after("Sun, 29 Nov 2026 00:59:00 GMT", now=now) == 0.0
    assert retry_after("soon") is None
    assert retry_after(None) is None


def test_which_answers_are_retried() -> None:
    assert (
        next_delay(attempt=0, retries=4, replayable=True, status=503, retry_after_header="2") == 2.0
    )
    assert (
        next_delay(attempt=0, retries=4, replayable=False, status=429, retry_after_header="1")
        == 1.0
    )
    assert next_delay(attempt=0, retries=4, replayable=True, status=500) is not None
    assert next_delay(attempt=0, retries=4, replayable=False, status=500) is None
    assert next_delay(attempt=0, retries=4, replayable=True, status=404) is None
    assert next_delay(attempt=4, retries=4, replayable=True, status=503) is None
    assert next_delay(attempt=0, retries=0, replayable=True) is None
    assert next_delay(attempt=1, retries=4, replayable=False) is None
    assert next_delay(attempt=1, retries=4, replayable=True) is not None
