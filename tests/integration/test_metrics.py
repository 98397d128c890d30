"""Prometheus metrics as a scraper sees them: /metrics of the real app after a real campaign,
and ``postroom worker --metrics-port`` as a process."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from postroom.db.tables import MESSAGE_STATUSES
from postroom.runtime import Runtime
from tests.integration.conftest import new_client
from tests.integration.test_campaign_flow import csv_bytes
from tests.integration.test_cli import cli_env, postroom, start_server
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer, free_port
from tests.support.smtp_relay import SmtpRelay
from tests.support.worker_process import worker_with_metrics_port

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
STATUS_ROUTE = "/api/v1/campaigns/{campaign_id}/status"


def scrape(url: str) -> Samples:
    """Every sample of a metrics page, keyed by name and labels; the page must parse."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_after_a_campaign_over_smtp(
    relay_server: tuple[Runtime, LiveServer], smtp_relay: SmtpRelay
) -> None:
    rt, server = relay_server
    smtp_relay.handler.reject["gone@example.com"] = "550 5.1.1 No such user"
    smtp_relay.handler.reject_once["busy@example.com"] = "451 4.7.1 Try again later"
    api = new_client(rt, server)
    # The registry lives as long as the test process: compare against a scrape from before.
    before = scrape(f"{server.url}/metrics")
    template_id = api.upload_template("<p>Hi</p>", "Hi")
    rows = [["email"], ["ok@example.com"], ["gone@example.com"], ["busy@example.com"], ["x"]]
    file_id = api.upload_file(csv_bytes(rows))
    campaign_id = api.create_campaign(template_id=template_id, file_id=file_id).json()[
        "transaction_id"
    ]
    status = api.wait(campaign_id)
    assert status["status"] == "completed"
    assert httpx.get(f"{server.url}/no/such/{campaign_id}").status_code == 404
    after = scrape(f"{server.url}/metrics")
    api.close()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # Sends: ok and busy (second try) accepted, gone refused for good, busy's first try retried.
    smtp = {"transport": "smtp"}
    assert grew("postroom_sends_total", outcome="accepted", **smtp) == 2
    assert grew("postroom_sends_total", outcome="permanent", **smtp) == 1
    assert grew("postroom_sends_total", outcome="transient", **smtp) == 1
    assert grew("postroom_retries_total", **smtp) == 1
    assert grew("postroom_relay_replies_total", code="250", **smtp) == 2
    assert grew("postroom_relay_replies_total", code="550", **smtp) == 1
    assert grew("postroom_relay_replies_total", code="451", **smtp) == 1
    assert grew("postroom_send_seconds_count", **smtp) == 4
    assert 0 < grew("postroom_send_seconds_sum", **smtp) < 30

    # HTTP: counted by route template, never by raw path; unknown paths as "unmatched".
    polls = grew("postroom_http_requests_total", method="GET", route=STATUS_ROUTE, status="200")
    assert polls >= 1
    timed = grew(
        "postroom_http_request_seconds_count", method="GET", route=STATUS_ROUTE, status="200"
    )
    assert timed == polls
    assert grew("postroom_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert (
        grew("postroom_http_requests_total", method="POST", route="/api/v1/campaigns", status="202")
        == 1
    )
    routes = {dict(labels).get("route") for _name, labels in after}
    assert not any(campaign_id in str(route) for route in routes), routes
    buckets = [
        dict(labels)["le"]
        for name, labels in after
        if name == "postroom_http_request_seconds_bucket" and ("route", STATUS_ROUTE) in labels
    ]
    assert "0.02" in buckets and "+Inf" in buckets

    # Message gauges: read from the database, equal to the campaign's own counts.
    for message_status in MESSAGE_STATUSES:
        assert (
            value(after, "postroom_messages", status=message_status, transport="smtp")
            == status["counts"][message_status]
        ), message_status
    assert value(after, "postroom_queue_depth", status="queued") == 0


def test_queue_depth_counts_messages_of_campaigns_still_to_send(client: ApiClient) -> None:
    template_id = api_template(client)
    rows = [["email"]] + [[f"u{i}@example.com"] for i in range(7)]
    file_id = client.upload_file(csv_bytes(rows))
    send_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    campaign_id = client.create_campaign(
        template_id=template_id, file_id=file_id, send_at=send_at
    ).json()["transaction_id"]
    assert client.wait(campaign_id, until=("scheduled",))["counts"]["queued"] == 7
    url = str(client.http.base_url.join("/metrics"))

    scheduled = scrape(url)
    assert value(scheduled, "postroom_queue_depth", status="queued") == 7
    assert value(scheduled, "postroom_queue_depth", status="sending") == 0
    assert value(scheduled, "postroom_messages", status="queued", transport="capture") == 7

    assert client.http.post(f"/api/v1/campaigns/{campaign_id}/cancel").status_code == 200
    cancelled = scrape(url)
    assert value(cancelled, "postroom_queue_depth", status="queued") == 0
    assert value(cancelled, "postroom_messages", status="queued", transport="capture") == 0
    assert value(cancelled, "postroom_messages", status="cancelled", transport="capture") == 7


def api_template(client: ApiClient) -> str:
    return client.upload_template("<p>Hi {{ email }}</p>", "Hi")


def test_worker_serves_its_metrics_on_the_metrics_port(tmp_path: Path, database_url: str) -> None:
    api_port = free_port()
    env = cli_env(
        tmp_path,
        database_url,
        POSTROOM_BASE_URL=f"http://127.0.0.1:{api_port}",
        POSTROOM_SECRET_KEY="worker-metrics",
    )
    postroom("migrate", env=env, cwd=tmp_path)
    key = json.loads(postroom("tenant", "create", "t", "--json", env=env, cwd=tmp_path).stdout)
    api_process = start_server(api_port, env, tmp_path, "api")
    try:
        with worker_with_metrics_port(env, tmp_path) as base:
            url = f"{base}/metrics"
            api = ApiClient(f"http://127.0.0.1:{api_port}", key["api_key"])
            template_id = api_template(api)
            rows = [["email"]] + [[f"u{i}@example.com"] for i in range(5)]
            file_id = api.upload_file(csv_bytes(rows))
            created = api.create_campaign(template_id=template_id, file_id=file_id)
            assert api.wait(created.json()["transaction_id"])["counts"]["sent"] == 5
            api.close()
            samples = scrape(url)
            capture = {"transport": "capture"}
            assert value(samples, "postroom_sends_total", outcome="accepted", **capture) == 5
            assert value(samples, "postroom_relay_replies_total", code="250", **capture) == 5
            assert value(samples, "postroom_send_seconds_count", **capture) == 5
            # The worker serves no HTTP API, so it has no request counts.
            assert not any(name.startswith("postroom_http_") for name, _labels in samples)
    finally:
        api_process.terminate()
        api_process.communicate(timeout=30)


def test_worker_metrics_port_in_use_stops_with_a_clear_error(tmp_path: Path) -> None:
    env = cli_env(tmp_path, f"sqlite:///{tmp_path / 'w.sqlite'}")
    postroom("migrate", env=env, cwd=tmp_path)
    with socket_listening() as port:
        env["POSTROOM_WORKER_METRICS_PORT"] = str(port)
        result = postroom("worker", env=env, cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]  # after the schema check's log lines
    assert last.startswith("configuration error: POSTROOM_WORKER_METRICS_PORT"), result.stderr
    assert f"127.0.0.1:{port}" in last


@contextlib.contextmanager
def socket_listening() -> Iterator[int]:
    """A port on 127.0.0.1 that someone else is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]
