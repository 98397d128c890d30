"""Crash safety with real processes: `postroom worker` processes killed, stopped, cut off from
their relay or their database mid-campaign, against a real SMTP server that counts what it
receives per recipient. Campaigns go in through the real HTTP API (an API-only server: it
never sends), and every test ends with every message recorded ``sent``.

Kill moments come from a seeded random.Random; the seed is printed (``pytest -s``) and
POSTROOM_CHAOS_SEED replays a run."""

from __future__ import annotations

import os
import random
import smtplib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from postroom.db.tables import campaigns, messages
from postroom.runtime import Runtime, build_runtime
from tests.conftest import make_settings
from tests.integration.conftest import new_client
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient
from tests.support.counting_relay import CountingRelay
from tests.support.counts import assert_counts_match_rows
from tests.support.live_server import LiveServer, free_port
from tests.support.tcp_proxy import TcpProxy
from tests.support.worker_process import WorkerProcess, worker_env

SEND_BATCH_SIZE = 100
SEND_CONCURRENCY = 2
# What one worker may have handed to the relay without recording it: a kill repeats at most this.
BATCH_IN_FLIGHT = SEND_BATCH_SIZE * SEND_CONCURRENCY
LEASE_SECONDS = 3
KILLS = 8
# A worker is killed after a random number of new deliveries up to this, so eight lives
# cannot finish a 5,000-recipient campaign before the last kill.
MAX_DELIVERIES_BEFORE_KILL = 400
SIGTERM_EXIT_SECONDS = 30

postgres_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def seeded_random(test: str) -> random.Random:
    seed = int(os.environ.get("POSTROOM_CHAOS_SEED", time.time_ns() % 2**32))
    print(f"\n{test}: seed {seed} (POSTROOM_CHAOS_SEED={seed} replays the kill moments)")
    return random.Random(seed)


def wait_until(condition: Callable[[], bool], timeout_seconds: float, what: str) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_seconds} s waiting until {what}")
        time.sleep(0.02)


def wait_for_deliveries(relay: CountingRelay, total: int) -> None:
    wait_until(lambda: relay.total() >= total, 60, f"the relay counted {total} deliveries")


@dataclass
class Deployment:
    """An API-only server, a counting SMTP relay and `postroom worker` processes, sharing one
    database and one blob store."""

    rt: Runtime
    api: ApiClient
    relay: CountingRelay
    tmp_path: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_worker(
        self, *, database_url: str | None = None, helo: str | None = None, **settings: str
    ) -> WorkerProcess:
        env = worker_env(
            database_url=database_url or self.rt.settings.database_url,
            storage_url=self.rt.settings.storage_url,
            transport_url=self.relay.url(helo),
            secret_key=self.rt.settings.secret_key,
            lease_seconds=str(LEASE_SECONDS),
            poll_interval_seconds="0.2",
            retry_base_seconds="0.5",
            retry_cap_seconds="1",
            send_batch_size=str(SEND_BATCH_SIZE),
            send_concurrency=str(SEND_CONCURRENCY),
            smtp_timeout_seconds="5",
            worker_niceness="0",
            breaker_cooldown_seconds="0.5",
            breaker_max_cooldown_seconds="1",
            **settings,
        )
        log_path = self.tmp_path / f"worker-{len(self.workers) + 1}.log"
        worker = WorkerProcess(env, self.tmp_path, log_path)
        self.workers.append(worker)
        return worker

    def create_campaign(
        self, recipients: int, domains: tuple[str, ...] = ("example.com",)
    ) -> tuple[str, list[str]]:
        """A campaign to ``recipients`` addresses (spread over ``domains``), created over
        HTTP; returns its id and the addresses."""
        emails = [f"r{i}@{domains[i % len(domains)]}" for i in range(recipients)]
        template_id = self.api.upload_template("<p>Hello {{ name }}</p>", "Hi {{ name }}")
        rows = [["email", "name"]] + [[email, f"R{i}"] for i, email in enumerate(emails)]
        file_id = self.api.upload_file(csv_bytes(rows))
        created = self.api.create_campaign(template_id=template_id, file_id=file_id)
        assert created.status_code == 202, created.text
        campaign_id: str = created.json()["transaction_id"]
        return campaign_id, emails

    def campaign_status(self, campaign_id: str) -> str:
        with self.rt.db.read() as conn:
            status: str = conn.execute(
                select(campaigns.c.status).where(campaigns.c.id == campaign_id)
            ).scalar_one()
        return status

    def message_statuses(self, campaign_id: str) -> dict[str, list[str]]:
        """Each recipient's message records: address -> their statuses."""
        found: dict[str, list[str]] = {}
        with self.rt.db.read() as conn:
            for email, status in conn.execute(
                select(messages.c.email, messages.c.status).where(
                    messages.c.campaign_id == campaign_id
                )
            ):
                found.setdefault(email, []).append(status)
        return found

    def leased_by(self, campaign_id: str, worker: WorkerProcess) -> int:
        """Messages in ``sending`` under a lease of that worker process (its id holds the pid)."""
        with self.rt.db.read() as conn:
            count: int = conn.execute(
                select(func.count()).where(
                    messages.c.campaign_id == campaign_id,
                    messages.c.status == "sending",
                    messages.c.lease_owner.like(f"%:{worker.pid}:%"),
                )
            ).scalar_one()
        return count

    def retried(self, campaign_id: str) -> int:
        """Messages back in the queue after a failed try (charged as an attempt or not)."""
        with self.rt.db.read() as conn:
            count: int = conn.execute(
                select(func.count()).where(
                    messages.c.campaign_id == campaign_id,
                    messages.c.status.in_(("queued", "deferred")),
                    messages.c.last_error.is_not(None),
                )
            ).scalar_one()
        return count

    def assert_repeats_are_flagged(self, campaign_id: str) -> None:
        """Every recipient the relay saw more than once has a message flagged
        ``possible_duplicate``, and the campaign counts at least that many."""
        counted = self.relay.per_recipient()
        with self.rt.db.read() as conn:
            flagged = set(
                conn.execute(
                    select(messages.c.email).where(
                        messages.c.campaign_id == campaign_id, messages.c.possible_duplicate
                    )
                ).scalars()
            )
        repeated = {email for email, times in counted.items() if times > 1}
        assert repeated <= flagged, sorted(repeated - flagged)[:5]
        status = self.api.status(campaign_id)
        assert status["possible_duplicates"] == len(flagged) >= len(repeated)

    def wait_for_completion(self, campaign_id: str, timeout_seconds: float) -> None:
        status = self.api.wait(campaign_id, timeout=timeout_seconds)
        assert status["status"] == "completed", status

    def assert_every_message_sent(self, campaign_id: str, emails: list[str]) -> None:
        """Exactly one message record per recipient, every one ``sent``, and the campaign's
        counters agree with the rows."""
        found = self.message_statuses(campaign_id)
        assert sorted(found) == sorted(emails)
        wrong = {email: statuses for email, statuses in found.items() if statuses != ["sent"]}
        assert not wrong, (
            f"{len(wrong)} recipients not exactly once sent, e.g. {list(wrong.items())[:5]}"
        )
        assert_counts_match_rows(self.rt)

    def deliveries(self, emails: list[str]) -> tuple[int, int, int]:
        """(recipients never received, received twice or more, received by strangers)."""
        counted = self.relay.per_recipient()
        missing = sum(1 for email in emails if counted[email] == 0)
        repeated = sum(1 for email in emails if counted[email] > 1)
        strangers = len(set(counted) - set(emails))
        return missing, repeated, strangers


@pytest.fixture
def deployment(database_url: str, tmp_path: Path) -> Iterator[Deployment]:
    port = free_port()
    rt = build_runtime(make_settings(database_url, tmp_path, port), var_dir=tmp_path / "var")
    server = LiveServer(rt, port, with_worker=False)
    server.start()
    relay = CountingRelay()
    relay.start()
    api = new_client(rt, server)
    site = Deployment(rt, api, relay, tmp_path)
    try:
        yield site
    finally:
        for worker in site.workers:
            worker.stop_if_running()
        api.close()
        relay.stop()
        server.stop()
        rt.close()


def test_killed_workers_lose_nothing_and_repeat_at_most_their_batches(
    deployment: Deployment, request: pytest.FixtureRequest
) -> None:
    rng = seeded_random(request.node.name)
    started = time.monotonic()
    campaign_id, emails = deployment.create_campaign(5000)
    relay = deployment.relay
    worker = deployment.start_worker()
    kills = 0
    while kills < KILLS:
        before = relay.total()
        wanted = before + rng.randint(1, MAX_DELIVERIES_BEFORE_KILL)
        wait_for_deliveries(relay, wanted)
        time.sleep(rng.uniform(0, 0.1))  # somewhere in claim, send or record
        assert deployment.campaign_status(campaign_id) == "sending"
        worker.kill()
        kills += 1
        print(f"  kill {kills}: after {relay.total()} deliveries")
        worker = deployment.start_worker()
    deployment.wait_for_completion(campaign_id, 60)
    seconds = time.monotonic() - started

    missing, repeated, strangers = deployment.deliveries(emails)
    print(f"  kills {kills}, recipients received twice or more {repeated}, {seconds:.1f} s")
    deployment.assert_every_message_sent(campaign_id, emails)
    assert (missing, strangers) == (0, 0)
    assert repeated <= kills * BATCH_IN_FLIGHT
    deployment.assert_repeats_are_flagged(campaign_id)


@pytest.mark.postgres
@postgres_only
def test_three_workers_share_a_campaign_and_send_each_message_once(
    deployment: Deployment,
) -> None:
    started = time.monotonic()
    names = ["worker-a", "worker-b", "worker-c"]
    for name in names:
        deployment.start_worker(helo=name)
    campaign_id, emails = deployment.create_campaign(10_000)
    deployment.wait_for_completion(campaign_id, 120)
    seconds = time.monotonic() - started

    shares = deployment.relay.per_client()
    print(f"\n  shares {dict(shares)}, {seconds:.1f} s")
    deployment.assert_every_message_sent(campaign_id, emails)
    assert deployment.deliveries(emails) == (0, 0, 0)
    assert set(shares) == set(names) and all(shares[name] > 0 for name in names), shares


def sending_midway(
    deployment: Deployment, rng: random.Random, **worker: str
) -> tuple[str, list[str], WorkerProcess]:
    """A 2,000-recipient campaign with one worker, a random part of the way through."""
    campaign_id, emails = deployment.create_campaign(2000)
    started = deployment.start_worker(**worker)
    wait_for_deliveries(deployment.relay, rng.randint(1, 1000))
    return campaign_id, emails, started


def test_sigterm_finishes_the_batch_in_flight_and_leaves_no_lease(
    deployment: Deployment, request: pytest.FixtureRequest
) -> None:
    rng = seeded_random(request.node.name)
    started = time.monotonic()
    campaign_id, emails, worker = sending_midway(deployment, rng)
    relay = deployment.relay
    # Stop it while it holds a claimed batch: that batch must be sent and recorded.
    wait_until(lambda: deployment.leased_by(campaign_id, worker) > 0, 30, "a batch is claimed")
    assert deployment.campaign_status(campaign_id) == "sending"
    stopping = time.monotonic()
    exit_code = worker.terminate(SIGTERM_EXIT_SECONDS)
    print(f"  stopped after {relay.total()} deliveries in {time.monotonic() - stopping:.1f} s")
    assert exit_code == 0, worker.output()
    assert "Traceback" not in worker.output()
    assert deployment.leased_by(campaign_id, worker) == 0

    deployment.start_worker()
    deployment.wait_for_completion(campaign_id, 60)
    print(f"  {time.monotonic() - started:.1f} s")
    deployment.assert_every_message_sent(campaign_id, emails)
    assert deployment.deliveries(emails) == (0, 0, 0)


def test_campaign_completes_when_the_relay_goes_away_and_comes_back(
    deployment: Deployment, request: pytest.FixtureRequest
) -> None:
    rng = seeded_random(request.node.name)
    started = time.monotonic()
    campaign_id, emails, worker = sending_midway(deployment, rng)
    relay = deployment.relay
    relay.stop()
    outage_started = time.monotonic()
    print(f"  relay stopped after {relay.total()} deliveries")
    wait_until(lambda: deployment.retried(campaign_id) > 0, 30, "the worker saw the relay gone")
    wait_until(lambda: time.monotonic() - outage_started >= 3, 10, "the outage lasted 3 s")
    relay.start()

    deployment.wait_for_completion(campaign_id, 60)
    print(f"  {time.monotonic() - started:.1f} s")
    assert worker.is_running()
    deployment.assert_every_message_sent(campaign_id, emails)
    missing, repeated, strangers = deployment.deliveries(emails)
    print(f"  recipients received twice or more {repeated}")
    assert (missing, strangers) == (0, 0)
    deployment.assert_repeats_are_flagged(campaign_id)


@pytest.mark.postgres
@postgres_only
def test_worker_rides_out_a_database_restart(
    deployment: Deployment, request: pytest.FixtureRequest
) -> None:
    rng = seeded_random(request.node.name)
    started = time.monotonic()
    database = make_url(deployment.rt.settings.database_url)
    proxy = TcpProxy(target_port=database.port or 5432)
    proxy.start()
    try:
        proxied_url = database.set(port=proxy.port).render_as_string(hide_password=False)
        campaign_id, emails, worker = sending_midway(deployment, rng, database_url=proxied_url)
        relay = deployment.relay
        proxy.cut()
        outage_started = time.monotonic()
        print(f"  database cut off after {relay.total()} deliveries")
        wait_until(lambda: time.monotonic() - outage_started >= 3, 10, "the outage lasted 3 s")
        accepted_before = proxy.accepted
        proxy.accept()

        deployment.wait_for_completion(campaign_id, 60)
        print(f"  {time.monotonic() - started:.1f} s")
        assert proxy.accepted > accepted_before, "the worker never reconnected"
        assert worker.is_running(), worker.output()
        # An outage is reported in one line per failed step, not with a traceback.
        assert "database unavailable" in worker.output()
        assert "Traceback" not in worker.output()
        deployment.assert_every_message_sent(campaign_id, emails)
        missing, repeated, strangers = deployment.deliveries(emails)
        print(f"  recipients received twice or more {repeated}")
        assert (missing, strangers) == (0, 0)
        deployment.assert_repeats_are_flagged(campaign_id)
    finally:
        for running in deployment.workers:
            running.stop_if_running()
        proxy.close()


def test_counting_relay_counts_each_recipient() -> None:
    """The relay itself: a stop closes the port and a start opens the same one again."""
    relay = CountingRelay()
    relay.start()
    with smtplib.SMTP("127.0.0.1", relay.port) as smtp:
        smtp.ehlo("probe")
        smtp.sendmail("a@example.com", ["x@example.com", "y@example.com"], b"Subject: x\r\n\r\nx")
        smtp.sendmail("a@example.com", ["x@example.com"], b"Subject: x\r\n\r\nx")
    relay.stop()
    with pytest.raises(OSError):
        smtplib.SMTP("127.0.0.1", relay.port, timeout=2)
    relay.start()
    with smtplib.SMTP("127.0.0.1", relay.port) as smtp:
        smtp.sendmail("a@example.com", ["y@example.com"], b"Subject: x\r\n\r\nx")
    assert relay.per_recipient() == Counter({"x@example.com": 2, "y@example.com": 2})
    assert relay.per_client()["probe"] == 3
    relay.stop()
