"""The sending metrics, read back from our registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from postroom.db.engine import Database
from postroom.observability.metrics import (
    REGISTRY,
    MessageGauges,
    exposition,
    record_sends,
    reply_code,
)
from postroom.transports.base import Accepted, Permanent, Transient


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_record_sends_counts_outcomes_codes_retries_and_time() -> None:
    transport = "unit-record"
    outcomes = [
        Accepted("250 2.0.0 Ok: queued as X"),
        Accepted("250 captured"),
        Transient("451 4.7.1 Try again later", code=451),
        Transient("connection refused", transport_level=True),
        Permanent("550 5.1.1 No such user", code=550),
    ]
    record_sends(transport, outcomes, 0.5)
    labels = {"transport": transport}
    assert sample("postroom_sends_total", outcome="accepted", **labels) == 2
    assert sample("postroom_sends_total", outcome="transient", **labels) == 2
    assert sample("postroom_sends_total", outcome="permanent", **labels) == 1
    assert sample("postroom_retries_total", **labels) == 2
    assert sample("postroom_relay_replies_total", code="250", **labels) == 2
    assert sample("postroom_relay_replies_total", code="451", **labels) == 1
    assert sample("postroom_relay_replies_total", code="550", **labels) == 1
    assert sample("postroom_relay_replies_total", code="none", **labels) == 1
    assert sample("postroom_send_seconds_count", **labels) == 5
    assert sample("postroom_send_seconds_sum", **labels) == pytest.approx(0.5)
    assert sample("postroom_send_seconds_bucket", le="0.1", **labels) == 5
    assert sample("postroom_send_seconds_bucket", le="0.05", **labels) == 0


def test_an_empty_batch_records_nothing() -> None:
    record_sends("unit-empty", [], 0.2)
    assert (
        REGISTRY.get_sample_value("postroom_send_seconds_count", {"transport": "unit-empty"})
        is None
    )


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (Accepted("250 OK id=1"), "250"),
        (Accepted("OK"), "none"),  # an API provider's reply may carry no code
        (Transient("timed out"), "none"),
        (Transient("421 closing", code=421, transport_level=True), "421"),
        (Permanent("odd", code=12345), "none"),  # not a reply code: never a label value
    ],
)
def test_reply_code(outcome: Accepted | Transient | Permanent, code: str) -> None:
    assert reply_code(outcome) == code


def test_a_scrape_without_the_database_still_shows_the_process_metrics(tmp_path: Path) -> None:
    unreachable = Database(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    try:
        gauges = MessageGauges(unreachable, "capture")
        assert list(gauges.collect()) == []
        page = exposition(gauges).decode()
    finally:
        unreachable.dispose()
    assert "# TYPE postroom_sends_total counter" in page
    assert "postroom_messages" not in page
