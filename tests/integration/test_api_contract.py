"""The HTTP contract: auth, tenant isolation, signed uploads, campaign creation errors,
idempotency, cancel, listing and the OpenAPI document."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from postroom.runtime import Runtime
from tests.integration.conftest import new_client
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer

SIMPLE_CSV = csv_bytes([["email", "name"], ["a@example.com", "A"], ["b@example.com", "B"]])


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["message"]
    code: str = body["error"]["code"]
    return code


def ready_campaign_inputs(api: ApiClient) -> tuple[str, str]:
    return api.upload_template("<p>Hi {{ name }}</p>", "Hello"), api.upload_file(SIMPLE_CSV)


# --- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer nope"}, "invalid_api_key"),
        ({"X-API-Key": "pr_abc_def"}, "invalid_api_key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing_api_key"),
    ],
)
def test_requests_without_a_valid_key_get_401(
    live_server: LiveServer, headers: dict[str, str], code: str
) -> None:
    response = httpx.get(f"{live_server.url}/api/v1/campaigns", headers=headers)
    assert response.status_code == 401
    assert error_code(response) == code


def test_x_api_key_header_works_and_revoked_keys_stop_working(
    runtime: Runtime, live_server: LiveServer, client: ApiClient
) -> None:
    from postroom.tenants.keys import parse_key
    from postroom.tenants.service import revoke_key

    key = client.http.headers["Authorization"].split(" ", 1)[1]
    url = f"{live_server.url}/api/v1/campaigns"
    assert httpx.get(url, headers={"X-API-Key": key}).status_code == 200
    parsed = parse_key(key)
    assert parsed is not None
    with runtime.db.write() as conn:
        revoke_key(conn, parsed[0], runtime.clock.now())
    response = httpx.get(url, headers={"X-API-Key": key})
    assert response.status_code == 401
    assert error_code(response) == "revoked_api_key"


def test_another_tenants_resources_answer_404(
    runtime: Runtime, live_server: LiveServer, client: ApiClient
) -> None:
    template_id, file_id = ready_campaign_inputs(client)
    campaign_id = client.create_campaign(template_id=template_id, file_id=file_id).json()[
        "transaction_id"
    ]
    other = new_client(runtime, live_server, "other")
    for path in (
        f"/api/v1/templates/{template_id}",
        f"/api/v1/campaigns/{campaign_id}/status",
        f"/api/v1/campaigns/{campaign_id}/messages",
        f"/api/v1/campaigns/{campaign_id}/errors",
    ):
        response = other.http.get(path)
        assert response.status_code == 404, path
    assert other.http.post(f"/api/v1/campaigns/{campaign_id}/cancel").status_code == 404
    stolen = other.create_campaign(template_id=template_id, file_id=file_id)
    assert stolen.status_code == 404
    assert error_code(stolen) == "template_not_found"
    assert other.http.get("/api/v1/campaigns").json()["campaigns"] == []
    other.close()


# --- presigned uploads ------------------------------------------------------------------------


def template_ticket(api: ApiClient) -> dict[str, str]:
    response = api.http.post(
        "/api/v1/templates/presigned-url", json={"name": "t", "subject": "Hi {{ name }}"}
    )
    assert response.status_code == 201
    ticket: dict[str, str] = response.json()
    assert ticket["method"] == "PUT"
    assert ticket["headers"] == {"Content-Type": "text/html"}
    return ticket


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return parts._replace(query=urlencode(query)).geturl()


def test_upload_is_refused_when_tampered_expired_oversized_or_repeated(client: ApiClient) -> None:
    ticket = template_ticket(client)
    url, headers = ticket["upload_url"], ticket["headers"]

    tampered = httpx.put(with_query(url, max="999999999"), content=b"<p>x</p>", headers=headers)
    assert tampered.status_code == 403
    assert error_code(tampered) == "invalid_signature"

    forged_expiry = str(int((datetime.now(UTC) + timedelta(days=9)).timestamp()))
    late = httpx.put(with_query(url, expires=forged_expiry), content=b"<p>x</p>", headers=headers)
    assert late.status_code == 403

    wrong_type = httpx.put(url, content=b"<p>x</p>", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    assert error_code(wrong_type) == "wrong_content_type"

    too_big = httpx.put(url, content=b"x" * (512 * 1024 + 1), headers=headers)
    assert too_big.status_code == 413
    assert error_code(too_big) == "upload_too_large"

    first = httpx.put(url, content=b"<p>{{ name }}</p>", headers=headers)
    assert first.status_code == 201
    second = httpx.put(url, content=b"<p>other</p>", headers=headers)
    assert second.status_code == 409
    assert error_code(second) == "already_uploaded"
    template = client.http.get(f"/api/v1/templates/{ticket['template_id']}").json()
    assert template["status"] == "ready"
    assert template["size"] == len(b"<p>{{ name }}</p>")


def test_streamed_upload_over_the_limit_leaves_nothing(client: ApiClient) -> None:
    ticket = template_ticket(client)

    def body() -> object:
        for _ in range(600):
            yield b"x" * 1024

    response = httpx.put(ticket["upload_url"], content=body(), headers=ticket["headers"])
    assert response.status_code == 413
    template = client.http.get(f"/api/v1/templates/{ticket['template_id']}").json()
    assert template["status"] == "pending_upload"
    retry = httpx.put(ticket["upload_url"], content=b"<p>ok</p>", headers=ticket["headers"])
    assert retry.status_code == 201


def test_expired_upload_url_is_refused(runtime: Runtime, client: ApiClient) -> None:
    from postroom.blobs.local import LocalBlobStore

    store = runtime.blobs
    assert isinstance(store, LocalBlobStore)
    ticket = template_ticket(client)
    key = urlsplit(ticket["upload_url"]).path.removeprefix("/uploads/")
    past = datetime.now(UTC) - timedelta(seconds=1)
    expired = store.presign_put(key, content_type="text/html", max_bytes=100, expires_at=past)
    response = httpx.put(expired.url, content=b"<p>x</p>", headers=expired.headers)
    assert response.status_code == 403
    assert error_code(response) == "url_expired"


def test_invalid_template_reports_reason_and_line(client: ApiClient) -> None:
    template_id = client.upload_template("<p>ok</p>\n<p>{% if %}</p>", "Hi")
    template = client.http.get(f"/api/v1/templates/{template_id}").json()
    assert template["status"] == "invalid"
    assert template["errors"][0]["line"] == 2
    file_id = client.upload_file(SIMPLE_CSV)
    response = client.create_campaign(template_id=template_id, file_id=file_id)
    assert response.status_code == 422
    assert error_code(response) == "template_invalid"


def test_sandbox_violation_makes_the_template_invalid(client: ApiClient) -> None:
    template_id = client.upload_template("{{ name.__class__.__mro__ }}", "Hi")
    template = client.http.get(f"/api/v1/templates/{template_id}").json()
    assert template["status"] == "invalid"


def test_subject_that_does_not_compile_is_refused_at_once(client: ApiClient) -> None:
    response = client.http.post(
        "/api/v1/templates/presigned-url", json={"name": "t", "subject": "Hi {{ name"}
    )
    assert response.status_code == 422
    assert error_code(response) == "invalid_subject"


def test_file_upload_needs_a_csv_content_type(client: ApiClient) -> None:
    response = client.http.post(
        "/api/v1/files/presigned-url", json={"filename": "x.png", "content_type": "image/png"}
    )
    assert response.status_code == 415
    assert error_code(response) == "unsupported_content_type"


# --- campaign creation -----------------------------------------------------------------------


def test_campaign_needs_uploaded_inputs(client: ApiClient) -> None:
    pending_template = template_ticket(client)["template_id"]
    file_id = client.upload_file(SIMPLE_CSV)
    response = client.create_campaign(template_id=pending_template, file_id=file_id)
    assert response.status_code == 422
    assert error_code(response) == "template_not_uploaded"

    template_id = client.upload_template("<p>{{ name }}</p>", "Hi")
    pending_file = client.http.post(
        "/api/v1/files/presigned-url", json={"filename": "l.csv", "content_type": "text/csv"}
    ).json()["file_id"]
    response = client.create_campaign(template_id=template_id, file_id=pending_file)
    assert response.status_code == 422
    assert error_code(response) == "file_not_uploaded"

    response = client.create_campaign(template_id="tpl_nope", file_id=file_id)
    assert response.status_code == 404
    assert error_code(response) == "template_not_found"


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"send_at": "2030-01-01T09:00:00"}, "timezone_required"),
        ({"from": {"email": "not an address"}}, "invalid_from"),
        ({"reply_to": "nope@"}, "invalid_reply_to"),
        ({"csv_delimiter": ":"}, "invalid_delimiter"),
        ({"unknown_field": 1}, "invalid_request"),
        ({"metadata": {"a": 1}}, "invalid_request"),
    ],
)
def test_bad_campaign_requests_are_422_with_a_code(
    client: ApiClient, extra: dict[str, object], code: str
) -> None:
    template_id, file_id = ready_campaign_inputs(client)
    response = client.create_campaign(template_id=template_id, file_id=file_id, **extra)
    assert response.status_code == 422, response.text
    assert error_code(response) == code
    assert client.http.get("/api/v1/campaigns").json()["campaigns"] == []


def test_malformed_json_is_a_clear_error(live_server: LiveServer, client: ApiClient) -> None:
    response = client.http.post(
        "/api/v1/campaigns", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert error_code(response) == "invalid_request"


def test_idempotency_key_replays_and_refuses_reuse(client: ApiClient) -> None:
    template_id, file_id = ready_campaign_inputs(client)
    body = {"template_id": template_id, "file_id": file_id, "name": "once"}
    first = client.create_campaign(**body, idempotency_key="k-1")
    again = client.create_campaign(**body, idempotency_key="k-1")
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert len(client.http.get("/api/v1/campaigns").json()["campaigns"]) == 1

    reused = client.create_campaign(**{**body, "name": "other"}, idempotency_key="k-1")
    assert reused.status_code == 422
    assert error_code(reused) == "idempotency_key_reused"

    other_key = client.create_campaign(**body, idempotency_key="k-2")
    assert other_key.json()["transaction_id"] != first.json()["transaction_id"]


def test_failed_request_frees_its_idempotency_key(client: ApiClient) -> None:
    template_id, file_id = ready_campaign_inputs(client)
    bad = client.create_campaign(
        template_id=template_id,
        file_id=file_id,
        send_at="2030-01-01T00:00:00",
        idempotency_key="k",
    )
    assert bad.status_code == 422
    good = client.create_campaign(
        template_id=template_id,
        file_id=file_id,
        send_at="2030-01-01T00:00:00",
        idempotency_key="k",
    )
    assert good.status_code == 422  # the same body fails the same way, nothing stored


def test_idempotency_key_still_running_answers_409(runtime: Runtime, client: ApiClient) -> None:
    from postroom.api import idempotency
    from postroom.campaigns.schemas import CampaignRequest
    from postroom.tenants.service import authenticate

    template_id, file_id = ready_campaign_inputs(client)
    body = {"template_id": template_id, "file_id": file_id}
    key = client.http.headers["Authorization"].split(" ", 1)[1]
    with runtime.db.read() as conn:
        tenant_id = authenticate(conn, key).tenant_id
    wire = CampaignRequest.model_validate(body).model_dump(mode="json", by_alias=True)
    digest = idempotency.request_hash(wire)
    assert idempotency.begin(runtime.db, tenant_id, "busy", digest, runtime.clock.now(), 60) is None
    response = client.create_campaign(**body, idempotency_key="busy")
    assert response.status_code == 409
    assert error_code(response) == "idempotency_request_in_progress"
    assert client.http.get("/api/v1/campaigns").json()["campaigns"] == []


def test_concurrent_creates_with_one_key_make_one_campaign(client: ApiClient) -> None:
    template_id, file_id = ready_campaign_inputs(client)
    body = {"template_id": template_id, "file_id": file_id}
    results: list[int] = []

    def create() -> None:
        results.append(client.create_campaign(**body, idempotency_key="race").status_code)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) <= {202, 409}
    assert 202 in results
    assert len(client.http.get("/api/v1/campaigns").json()["campaigns"]) == 1


# --- following and controlling campaigns ------------------------------------------------------


def test_scheduled_campaign_sends_nothing_before_its_time(
    runtime: Runtime, client: ApiClient
) -> None:
    import time

    from tests.support.outbox import outbox_count

    template_id, file_id = ready_campaign_inputs(client)
    send_at = datetime.now(UTC) + timedelta(seconds=2.5)
    created = client.create_campaign(
        template_id=template_id, file_id=file_id, send_at=send_at.isoformat()
    )
    campaign_id = created.json()["transaction_id"]
    status = client.wait(campaign_id, until=("scheduled",))
    assert status["scheduled_at"] is not None
    assert status["counts"]["queued"] == 2
    while datetime.now(UTC) < send_at - timedelta(seconds=0.3):
        assert outbox_count(runtime) == 0
        time.sleep(0.1)
    final = client.wait(campaign_id)
    assert final["status"] == "completed"
    assert outbox_count(runtime) == 2
    assert datetime.fromisoformat(final["started_at"]) >= send_at


def test_send_at_in_the_past_means_now(client: ApiClient) -> None:
    template_id, file_id = ready_campaign_inputs(client)
    created = client.create_campaign(
        template_id=template_id, file_id=file_id, send_at="2001-01-01T00:00:00+02:00"
    )
    status = client.wait(created.json()["transaction_id"])
    assert status["status"] == "completed"
    assert status["scheduled_at"] is None


def test_cancel_a_scheduled_campaign(runtime: Runtime, client: ApiClient) -> None:
    from tests.support.outbox import outbox_count

    template_id, file_id = ready_campaign_inputs(client)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    campaign_id = client.create_campaign(
        template_id=template_id, file_id=file_id, send_at=later
    ).json()["transaction_id"]
    client.wait(campaign_id, until=("scheduled",))
    cancelled = client.http.post(f"/api/v1/campaigns/{campaign_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["counts"]["cancelled"] == 2
    again = client.http.post(f"/api/v1/campaigns/{campaign_id}/cancel")
    assert again.status_code == 409
    assert error_code(again) == "campaign_finished"
    assert [m["status"] for m in client.messages(campaign_id)] == ["cancelled", "cancelled"]
    assert outbox_count(runtime) == 0


def test_listing_pages_newest_first_and_filters(client: ApiClient) -> None:
    template_id, file_id = ready_campaign_inputs(client)
    ids = [
        client.create_campaign(template_id=template_id, file_id=file_id, name=f"c{i}").json()[
            "transaction_id"
        ]
        for i in range(5)
    ]
    for campaign_id in ids:
        client.wait(campaign_id)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.http.get("/api/v1/campaigns", params=params).json()
        seen += [c["transaction_id"] for c in page["campaigns"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    done = client.http.get("/api/v1/campaigns", params={"status": "completed"}).json()
    assert len(done["campaigns"]) == 5
    bad = client.http.get("/api/v1/campaigns", params={"status": "nope"})
    assert bad.status_code == 400
    assert error_code(bad) == "invalid_status"
    bad_cursor = client.http.get("/api/v1/campaigns", params={"cursor": "garbage"})
    assert bad_cursor.status_code == 400
    assert error_code(bad_cursor) == "invalid_cursor"


def test_messages_filter_and_paginate(client: ApiClient) -> None:
    rows = [["email"]] + [[f"user{i}@example.com"] for i in range(7)]
    template_id = client.upload_template("<p>hi</p>", "Hi")
    file_id = client.upload_file(csv_bytes(rows))
    campaign_id = client.create_campaign(template_id=template_id, file_id=file_id).json()[
        "transaction_id"
    ]
    client.wait(campaign_id)
    messages = client.messages(campaign_id, limit=3, status="sent")
    assert [m["email"] for m in messages] == [f"user{i}@example.com" for i in range(7)]
    assert [m["row"] for m in messages] == list(range(2, 9))
    assert client.messages(campaign_id, status="failed") == []
    bad = client.http.get(f"/api/v1/campaigns/{campaign_id}/messages", params={"status": "x"})
    assert bad.status_code == 400


def test_unknown_route_and_method_use_the_error_shape(client: ApiClient) -> None:
    missing = client.http.get("/api/v1/nothing")
    assert missing.status_code == 404
    assert error_code(missing) == "not_found"
    wrong = client.http.delete("/api/v1/campaigns")
    assert wrong.status_code == 405
    assert error_code(wrong) == "method_not_allowed"


def test_openapi_describes_every_endpoint_and_the_error_shape(live_server: LiveServer) -> None:
    document = httpx.get(f"{live_server.url}/openapi.json").json()
    paths = document["paths"]
    for path, method in [
        ("/api/v1/templates/presigned-url", "post"),
        ("/api/v1/templates/{template_id}", "get"),
        ("/api/v1/files/presigned-url", "post"),
        ("/api/v1/campaigns", "post"),
        ("/api/v1/campaigns", "get"),
        ("/api/v1/campaigns/{campaign_id}/status", "get"),
        ("/api/v1/campaigns/{campaign_id}/messages", "get"),
        ("/api/v1/campaigns/{campaign_id}/cancel", "post"),
        ("/api/v1/campaigns/{campaign_id}/errors", "get"),
        ("/uploads/{key}", "put"),
        ("/healthz", "get"),
    ]:
        assert method in paths[path], (path, method)
    assert "ErrorBody" in document["components"]["schemas"]
    create = paths["/api/v1/campaigns"]["post"]
    assert {"401", "404", "409", "422"} <= set(create["responses"])
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    # Every documented error is our ErrorBody, FastAPI's own 422 shape included; a body that
    # cannot be parsed is a documented 400.
    error_body = {"$ref": "#/components/schemas/ErrorBody"}
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if "requestBody" in operation:
                assert "400" in responses, (method, path)
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == error_body, (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_nul_characters_are_refused_and_header_values_cleaned(client: ApiClient) -> None:
    template_id, file_id = ready_campaign_inputs(client)
    nul = client.create_campaign(template_id=template_id, file_id=file_id, metadata={"k": "a\x00"})
    assert nul.status_code == 422
    assert error_code(nul) == "invalid_request"
    subject = client.http.post(
        "/api/v1/templates/presigned-url", json={"name": "t", "subject": "Hi\x00"}
    )
    assert subject.status_code == 422
    named = client.create_campaign(
        template_id=template_id, file_id=file_id, name="Line one\r\nline two\x00"
    )
    assert named.status_code == 202
    status = client.status(named.json()["transaction_id"])
    assert status["name"] == "Line one line two"
