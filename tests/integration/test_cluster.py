"""Many processes (PostgreSQL): `make cluster`'s own code (bench/cluster.py) at a smaller size,
two API processes behind the small balancer and three workers with different roles sending
into a relay that counts every recipient; and an Idempotency-Key sent to both API processes
at once makes one campaign. Also, on both databases, which tasks each worker role runs."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from bench.client import BenchClient
from bench.cluster import Cluster, check_exactly_once, run_cluster
from bench.data import SEND_SUBJECT, realistic_template, write_recipients

from postroom.config import WORKER_ROLES
from postroom.runtime import Runtime
from postroom.worker.loop import Worker
from tests.support.counting_relay import CountingRelay

postgres_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
SENDING = "send,schedule,webhooks,retention"
RECIPIENTS = 1500


@pytest.mark.postgres
@postgres_only
@pytest.mark.timeout(900)  # five processes to start: minutes, not seconds, on a loaded machine
def test_a_campaign_through_the_cluster_reaches_every_recipient_once(
    database_url: str, tmp_path: Path
) -> None:
    relay = CountingRelay()
    relay.start()
    try:
        result = run_cluster(
            database_url,
            RECIPIENTS,
            tmp_path,
            relay.url(),
            worker_roles=["files", SENDING, SENDING],
            received=relay.total,
            env={"POSTROOM_SEND_BATCH_SIZE": "50"},  # small batches: both senders get some
        )
        per_recipient = relay.per_recipient()
    finally:
        relay.stop()
    print(f"\n  {result}")
    check_exactly_once(result)
    assert len(per_recipient) == result["valid"] and set(per_recipient.values()) == {1}
    api1, api2, files, send1, send2 = result["processes"]
    # Each API process served part of the uploads, the campaign and the status polls.
    assert api1["requests"] > 0 and api2["requests"] > 0
    # The files worker read the whole file and sent nothing; the senders read nothing.
    assert (files["rows"], files["sent"]) == (RECIPIENTS, 0)
    assert send1["rows"] == send2["rows"] == 0
    assert send1["sent"] > 0 and send2["sent"] > 0
    assert send1["sent"] + send2["sent"] == result["valid"]


@pytest.mark.postgres
@postgres_only
def test_one_idempotency_key_sent_to_both_api_processes_at_once_makes_one_campaign(
    database_url: str, tmp_path: Path
) -> None:
    cluster = Cluster(
        tmp_path / "cluster", database_url, f"capture://{tmp_path / 'outbox'}", worker_roles=[]
    )
    key = cluster.start()
    try:
        client = BenchClient(cluster.url, key, keep_alive=False)
        csv_path = tmp_path / "list.csv"
        write_recipients(csv_path, 20)
        body = {
            "template_id": client.template(realistic_template(1), SEND_SUBJECT),
            "file_id": client.recipients(csv_path),
        }
        answers = [_create_at_once(cluster.api_ports, key, body, f"key-{i}") for i in range(10)]
        listed = client.http.get("/api/v1/campaigns", params={"limit": 100}).json()
    finally:
        cluster.stop()
    for first, second in answers:
        statuses = sorted((first.status_code, second.status_code))
        # Both answered with the one campaign (the second a replay), or the second came while
        # the first was still in progress and was refused.
        assert statuses in ([202, 202], [202, 409]), (first.text, second.text)
        if statuses == [202, 202]:
            assert first.json()["transaction_id"] == second.json()["transaction_id"]
        else:
            refused = first if first.status_code == 409 else second
            assert refused.json()["error"]["code"] == "idempotency_request_in_progress"
    assert len(listed["campaigns"]) == len(answers)


def _create_at_once(
    ports: list[int], api_key: str, body: dict[str, Any], idempotency_key: str
) -> list[httpx.Response]:
    """POST the same campaign with the same key to each API process, released together."""
    start = threading.Barrier(len(ports))
    answers: list[httpx.Response] = []

    def create(port: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            headers = {"Authorization": f"Bearer {api_key}", "Idempotency-Key": idempotency_key}
            start.wait()
            answers.append(http.post("/api/v1/campaigns", json=body, headers=headers))

    threads = [threading.Thread(target=create, args=(port,)) for port in ports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


ROLE_TASKS = {
    "files": "_process_files",
    "send": "_send",
    "schedule": "_maintain_loop",
    "webhooks": "_deliver_webhooks",
    "retention": "_keep_retention",
}


@pytest.mark.parametrize("roles", [WORKER_ROLES, ("files",), ("send", "webhooks"), ("retention",)])
def test_a_worker_runs_only_the_tasks_of_its_roles(
    runtime: Runtime, roles: tuple[str, ...]
) -> None:
    worker = Worker(runtime, roles=frozenset(roles))
    tasks = worker._tasks(asyncio.Event())
    running = Counter(task.__name__ for task in tasks)
    for task in tasks:
        task.close()  # never started
    # The maintenance loop is every worker's liveness beat; it keeps the schedule only with
    # that role. Sending runs POSTROOM_SEND_CONCURRENCY loops.
    expected = Counter(ROLE_TASKS[role] for role in roles) | Counter(_maintain_loop=1)
    if "send" in roles:
        expected["_send"] = runtime.settings.send_concurrency
    assert running == expected
