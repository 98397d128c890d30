"""schemathesis against /openapi.json of the running app: every documented operation gets
generated requests, valid and invalid, with a valid API key; none may answer 5xx, and every
answer must be documented (status code, content type, headers) and match its schema.

It runs on both databases, bounded by ``MAX_EXAMPLES`` per operation and mode: about 30 s on
SQLite and 40 to 55 s on PostgreSQL here, so both fit in CI. The app is the real one on a free
port with its in-process worker; webhook deliveries to the URLs schemathesis makes up go
through a proxy that refuses them, so the test never reaches beyond 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from postroom.runtime import Runtime
from postroom.tenants.service import create_tenant
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer

MAX_EXAMPLES = 25
# What the API checks beyond what a schema can say (a cursor it gave, a known status, an ISO
# date, a CSV content type, a JSON SNS message) makes schema-valid requests fail with 4xx by
# design, so the check that every schema-valid request succeeds is left out.
EXCLUDED_CHECKS = [positive_data_acceptance]


@pytest.fixture
def offline_server(
    runtime: Runtime, server_port: int, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveServer]:
    """The live server, whose outbound HTTP (webhook deliveries) goes to a refusing proxy."""
    refusing_proxy = "http://127.0.0.1:9"
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(variable, refusing_proxy)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = LiveServer(runtime, server_port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def known_ids(api: ApiClient) -> dict[str, str]:
    """Resources that exist, so that generated requests also reach past the 404s."""
    template_id = api.upload_template("<p>Hi {{ name }}</p>", "Hello")
    file_id = api.upload_file(csv_bytes([["email", "name"], ["a@example.com", "A"]]))
    created = api.create_campaign(template_id=template_id, file_id=file_id, hold=True)
    assert created.status_code == 202, created.text
    campaign_id = created.json()["transaction_id"]
    api.wait(campaign_id, until=("held",))
    messages = api.http.get(f"/api/v1/campaigns/{campaign_id}/messages").json()["messages"]
    webhook = api.http.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["*"]}
    )
    assert webhook.status_code == 201, webhook.text
    suppressed = api.http.post("/api/v1/suppressions", json={"email": "gone@example.com"})
    assert suppressed.status_code == 201, suppressed.text
    return {
        "template_id": template_id,
        "campaign_id": campaign_id,
        "message_id": str(messages[0]["id"]),
        "webhook_id": webhook.json()["id"],
        "email": "gone@example.com",
    }


def test_every_operation_answers_as_documented(
    runtime: Runtime, offline_server: LiveServer
) -> None:
    with runtime.db.write() as conn:
        _tenant_id, key = create_tenant(conn, "fuzz", runtime.clock.now())
    api = ApiClient(offline_server.url, key)
    try:
        ids = known_ids(api)
    finally:
        api.close()
    document_url = f"{offline_server.url}/openapi.json"
    validate(httpx.get(document_url).json())  # a valid OpenAPI document, every $ref resolving
    schema = schemathesis.openapi.from_url(document_url)
    auth = {"Authorization": f"Bearer {key}"}

    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        names = {parameter.name for parameter in operation.path_parameters}
        known = {name: value for name, value in ids.items() if name in names}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            cases = operation.as_strategy(mode)
            if known and mode is GenerationMode.POSITIVE:
                cases = st.one_of(cases, operation.as_strategy(mode, path_parameters=known))
            problem = _run(cases, auth)
            if problem is not None:
                failures.append(f"{operation.label} ({mode.value}): {problem}")
    assert operations >= 30, "the document lost its operations"
    assert not failures, "\n\n".join(failures)


def _run(cases: st.SearchStrategy[Any], auth: dict[str, str]) -> str | None:
    """Hypothesis over ``cases``; the shrunk failure as text, or None when every case passed."""

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(cases)
    def check(case: Any) -> None:
        case.call_and_validate(headers=auth, excluded_checks=EXCLUDED_CHECKS)

    try:
        check()
    except Unsatisfiable:
        return None  # nothing to generate: no invalid request exists for this operation
    except (Exception, BaseExceptionGroup) as error:  # schemathesis reports a FailureGroup
        return str(error)[:4000]
    return None
