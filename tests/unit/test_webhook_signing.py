"""The webhook signature (server side signs, SDK side verifies) and the retry policy."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from postroom.client import WebhookSignatureInvalid, verify_webhook
from postroom.webhooks.retry_policy import RetryPolicy
from postroom.webhooks.signature import new_secret, signature_header

BODY = json.dumps({"id": "evt_1", "type": "sent", "data": {}}).encode()
NOW = 1_800_000_000


def test_a_signed_body_verifies_and_gives_the_event() -> None:
    secret = new_secret()
    header = signature_header(secret, NOW, BODY)
    assert header.startswith(f"t={NOW},v1=") and len(header.split("v1=")[1]) == 64
    assert verify_webhook(secret, BODY, header, now=NOW + 10)["id"] == "evt_1"


def test_secrets_are_long_and_distinct() -> None:
    secrets = {new_secret() for _ in range(100)}
    assert len(secrets) == 100 and all(s.startswith("whsec_") and len(s) >= 48 for s in secrets)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s, b, h: (s + "x", b, h),  # another secret
        lambda s, b, h: (s, b + b" ", h),  # a changed body
        lambda s, b, h: (s, b, h.replace(f"t={NOW}", f"t={NOW + 1}")),  # a moved timestamp
        lambda s, b, h: (s, b, h[:-1] + ("0" if h[-1] != "0" else "1")),  # a changed digest
        lambda s, b, h: (s, b, None),
        lambda s, b, h: (s, b, ""),
        lambda s, b, h: (s, b, "v1=abc"),
        lambda s, b, h: (s, b, f"t={NOW}"),
        lambda s, b, h: (s, b, "garbage"),
    ],
)
def test_anything_altered_or_missing_is_refused(tamper: object) -> None:
    secret = new_secret()
    args = tamper(secret, BODY, signature_header(secret, NOW, BODY))  # type: ignore[operator]
    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook(*args, now=NOW)


def test_an_old_signature_is_a_replay() -> None:
    secret = new_secret()
    header = signature_header(secret, NOW, BODY)
    verify_webhook(secret, BODY, header, now=NOW + 299)
    with pytest.raises(WebhookSignatureInvalid, match="tolerance"):
        verify_webhook(secret, BODY, header, now=NOW + 301)
    verify_webhook(secret, BODY, header, now=NOW + 3000, tolerance_seconds=3600)


def test_any_of_several_signatures_may_match() -> None:
    secret = new_secret()
    good = signature_header(secret, NOW, BODY).split(",")[1]
    assert verify_webhook(secret, BODY, f"t={NOW},v1={'0' * 64},{good}", now=NOW)


START = datetime(2026, 11, 1, tzinfo=UTC)
POLICY = RetryPolicy(base_seconds=30, cap_seconds=3600, window_seconds=24 * 3600)


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)
    for attempts, low, high in ((1, 15, 30), (2, 30, 60), (3, 60, 120), (20, 1800, 3600)):
        for _ in range(50):
            at = POLICY.next_attempt(attempts, START, START, rng=rng)
            assert at is not None
            assert low <= (at - START).total_seconds() <= high


def test_the_window_ends_the_retries_with_a_last_try_at_its_end() -> None:
    late = START + timedelta(hours=23, minutes=50)
    assert POLICY.next_attempt(30, START, late) == START + timedelta(hours=24)
    assert POLICY.next_attempt(31, START, START + timedelta(hours=24)) is None


def test_retry_after_is_a_minimum_within_the_cap() -> None:
    at = POLICY.next_attempt(1, START, START, retry_after=600)
    assert at is not None and (at - START).total_seconds() >= 600
    capped = POLICY.next_attempt(1, START, START, retry_after=10**9)
    assert capped is not None and (capped - START).total_seconds() <= 3600
