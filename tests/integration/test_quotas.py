"""Tenant quotas on both databases, over HTTP: each one crossed answers quota_exceeded naming
it before anything is written or queued, GET /api/v1/quotas shows them with today's usage,
and two campaigns created at once cannot both squeeze under the daily limit."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from sqlalchemy import func, select

from postroom.db.tables import campaigns, files, messages, tenant_daily_usage
from postroom.runtime import Runtime
from postroom.tenants.quotas import OwnLimits, set_own_limits
from postroom.tenants.service import create_tenant
from tests.integration.conftest import ServerFactory
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient


def tenant_with(rt: Runtime, url: str, limits: OwnLimits) -> ApiClient:
    with rt.db.write() as conn:
        tenant_id, key = create_tenant(conn, "quota", rt.clock.now())
        set_own_limits(conn, tenant_id, limits)
    return ApiClient(url, key)


def recipients(count: int) -> bytes:
    return csv_bytes([["email"], *([f"r{i}@example.com"] for i in range(count))])


def rows_in(rt: Runtime, table: Any) -> int:
    with rt.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def refusal(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert error["code"] == "quota_exceeded"
    return error


def test_a_file_over_the_size_quota_is_refused_when_declared_and_at_upload(
    server_factory: ServerFactory,
) -> None:
    rt, _api = server_factory.start()
    api = tenant_with(rt, _api.http.base_url.__str__(), OwnLimits(file_bytes=100))
    before = rows_in(rt, files)
    declared = api.http.post(
        "/api/v1/files/presigned-url", json={"filename": "big.csv", "size": 101}
    )
    error = refusal(declared, 413)
    assert error["details"] == {"quota": "file_bytes", "limit": 100, "requested": 101}
    assert rows_in(rt, files) == before

    ticket = api.http.post("/api/v1/files/presigned-url", json={"filename": "a.csv", "size": 100})
    assert ticket.status_code == 201, ticket.text
    upload = ticket.json()
    put = httpx.put(upload["upload_url"], content=recipients(10), headers=upload["headers"])
    assert put.status_code == 413  # the signed URL carries the tenant's limit
    assert api.http.get("/api/v1/quotas").json()["file_bytes"] == 100


def test_a_campaign_over_the_rows_quota_is_refused_and_nothing_is_queued(
    server_factory: ServerFactory,
) -> None:
    rt, base = server_factory.start()
    api = tenant_with(rt, str(base.http.base_url), OwnLimits(rows_per_campaign=3))
    template_id = api.upload_template("<p>Hi</p>", "Hi")
    too_many = api.upload_file(recipients(4))
    campaigns_before, messages_before = rows_in(rt, campaigns), rows_in(rt, messages)
    answer = api.create_campaign(template_id=template_id, file_id=too_many)
    error = refusal(answer, 422)
    assert error["details"] == {"quota": "rows_per_campaign", "limit": 3, "requested": 4}
    assert (rows_in(rt, campaigns), rows_in(rt, messages)) == (campaigns_before, messages_before)

    fits = api.upload_file(recipients(3))
    answer = api.create_campaign(template_id=template_id, file_id=fits)
    assert answer.status_code == 202, answer.text
    status = api.wait(answer.json()["transaction_id"])
    assert status["counts"]["total"] == 3
    quotas = api.http.get("/api/v1/quotas").json()
    assert quotas["rows_per_campaign"] == 3
    assert quotas["messages_per_day"]["limit"] is None


def test_messages_per_day_count_every_campaign_of_the_day(server_factory: ServerFactory) -> None:
    rt, base = server_factory.start()
    api = tenant_with(rt, str(base.http.base_url), OwnLimits(messages_per_day=5))
    template_id = api.upload_template("<p>Hi</p>", "Hi")
    three = api.upload_file(recipients(3))
    first = api.create_campaign(template_id=template_id, file_id=three)
    assert first.status_code == 202, first.text
    api.wait(first.json()["transaction_id"])
    campaigns_before, messages_before = rows_in(rt, campaigns), rows_in(rt, messages)
    error = refusal(api.create_campaign(template_id=template_id, file_id=three), 403)
    assert error["details"] == {
        "quota": "messages_per_day",
        "limit": 5,
        "used": 3,
        "requested": 3,
    }
    assert rows_in(rt, campaigns) == campaigns_before
    assert rows_in(rt, messages) == messages_before
    two = api.upload_file(recipients(2))
    assert api.create_campaign(template_id=template_id, file_id=two).status_code == 202
    shown = api.http.get("/api/v1/quotas").json()["messages_per_day"]
    assert (shown["limit"], shown["used"]) == (5, 5)
    assert shown["day"] == rt.clock.now().date().isoformat()


def test_campaigns_created_at_once_cannot_both_pass_the_daily_quota(
    server_factory: ServerFactory,
) -> None:
    rt, base = server_factory.start()
    api = tenant_with(rt, str(base.http.base_url), OwnLimits(messages_per_day=10))
    template_id = api.upload_template("<p>Hi</p>", "Hi")
    file_ids = [api.upload_file(recipients(3)) for _ in range(8)]
    start = threading.Barrier(len(file_ids))
    statuses: list[int] = []

    def create(file_id: str) -> None:
        with httpx.Client(base_url=str(base.http.base_url), headers=api.http.headers) as http:
            start.wait()
            answer = http.post(
                "/api/v1/campaigns", json={"template_id": template_id, "file_id": file_id}
            )
            statuses.append(answer.status_code)

    threads = [threading.Thread(target=create, args=(f,)) for f in file_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [202] * 3 + [403] * 5
    with rt.db.read() as conn:
        used = conn.execute(select(tenant_daily_usage.c.messages)).scalars().all()
        created = conn.execute(select(func.count()).select_from(campaigns)).scalar_one()
    assert list(used) == [9]
    assert created == 3
