"""Request bodies against the real app on a free port: too large answers 413 before it is
read, too slow (slow-loris) is cut off with 408 and leaves no half-written upload behind.
Clients are bare sockets, so they can misbehave in ways no HTTP library will."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from postroom.db.tables import files
from postroom.runtime import Runtime
from tests.integration.conftest import ServerFactory
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient
from tests.support.raw_http import RawClient, RawResponse, request_head

SMALL_LIMIT = 4096


def _auth(api: ApiClient) -> dict[str, str]:
    return {"Authorization": api.http.headers["Authorization"]}


def _campaign_url(api: ApiClient) -> str:
    return str(api.http.base_url.join("/api/v1/campaigns"))


def _assert_house_error(response: RawResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, response
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    return body


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(
    server_factory: ServerFactory,
) -> None:
    _rt, api = server_factory.start()  # the default limit: 1 MiB
    client = RawClient(_campaign_url(api))
    headers = _auth(api) | {"Content-Type": "application/json", "Content-Length": "1048577"}
    client.send(request_head("POST", _campaign_url(api), headers))
    response = client.response()  # not one byte of the body was sent
    client.close()
    body = _assert_house_error(response, 413, "payload_too_large")
    assert body["error"]["details"] == {"max_bytes": 1024 * 1024}
    assert response.closed and response.headers["connection"] == "close"
    # Security headers come with the guard's own answers too.
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_chunked_body_is_cut_off_as_it_crosses_the_limit(
    server_factory: ServerFactory,
) -> None:
    _rt, api = server_factory.start(request_max_bytes=SMALL_LIMIT)
    client = RawClient(_campaign_url(api))
    headers = _auth(api) | {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    client.send(request_head("POST", _campaign_url(api), headers))
    chunk = b'{"metadata": {"pad": "' + b"x" * 1000
    for _ in range(5):  # 5 KiB, never terminated: the server must not wait for the end
        client.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    response = client.response()
    client.close()
    _assert_house_error(response, 413, "payload_too_large")
    assert response.closed


def test_a_body_under_the_limit_is_parsed_as_usual(server_factory: ServerFactory) -> None:
    _rt, api = server_factory.start(request_max_bytes=SMALL_LIMIT)
    padded = {"template_id": "tpl_x", "file_id": "fil_x", "metadata": {"pad": "x" * 3500}}
    assert len(json.dumps(padded)) < SMALL_LIMIT
    response = api.http.post("/api/v1/campaigns", json=padded)
    assert response.status_code == 404  # the template does not exist: the body was read
    assert response.json()["error"]["code"] == "template_not_found"
    over = {**padded, "metadata": {"pad": "x" * SMALL_LIMIT}}
    response = api.http.post("/api/v1/campaigns", json=over)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_uploads_keep_their_own_signed_limit(server_factory: ServerFactory) -> None:
    _rt, api = server_factory.start(request_max_bytes=SMALL_LIMIT)
    rows = [["email", "note"]] + [[f"user{i}@example.com", "x" * 40] for i in range(400)]
    data = csv_bytes(rows)
    assert len(data) > 4 * SMALL_LIMIT
    api.upload_file(data)  # asserts 201


def _file_ticket(api: ApiClient) -> dict[str, Any]:
    ticket = api.http.post(
        "/api/v1/files/presigned-url", json={"filename": "list.csv", "content_type": "text/csv"}
    )
    assert ticket.status_code == 201, ticket.text
    body: dict[str, Any] = ticket.json()
    return body


def _start_upload(ticket: dict[str, Any], length: int) -> RawClient:
    client = RawClient(ticket["upload_url"])
    headers = ticket["headers"] | {"Content-Length": str(length)}
    client.send(request_head("PUT", ticket["upload_url"], headers))
    return client


def _nothing_half_written(rt: Runtime, tmp_path: Path, file_id: str) -> None:
    with rt.db.read() as conn:
        row = conn.execute(select(files).where(files.c.id == file_id)).one()
    assert row.status == "pending_upload"
    assert rt.blobs.size(row.blob_key) is None
    assert [p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []


def test_a_slow_loris_upload_is_cut_off_and_leaves_nothing_behind(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    rt, api = server_factory.start(
        request_body_timeout_seconds=1.0, request_body_min_bytes_per_second=64
    )
    ticket = _file_ticket(api)
    data = csv_bytes([["email"]] + [[f"user{i}@example.com"] for i in range(20)])
    client = _start_upload(ticket, len(data))
    # Ten bytes a second where 64 are needed: some arrive, never enough.
    completed = client.trickle(data, every_seconds=0.1, until=10)
    response = client.response()
    client.close()
    assert not completed and 0 < response.sent_bytes < len(data)
    body = _assert_house_error(response, 408, "request_timeout")
    assert body["error"]["details"] == {"timeout_seconds": 1.0, "min_bytes_per_second": 64}
    assert response.closed
    assert response.elapsed < 5
    _nothing_half_written(rt, tmp_path, ticket["file_id"])
    created = api.create_campaign(template_id="tpl_x", file_id=ticket["file_id"])
    assert created.status_code in (404, 422)  # nothing usable was made of it

    # The URL is still good for a client that sends the whole file.
    put = httpx.put(ticket["upload_url"], content=data, headers=ticket["headers"], timeout=30)
    assert put.status_code == 201, put.text
    assert put.json()["size"] == len(data)


def test_an_upload_that_stalls_after_the_headers_is_cut_off(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    rt, api = server_factory.start(
        request_body_timeout_seconds=1.0, request_body_min_bytes_per_second=0
    )
    ticket = _file_ticket(api)
    client = _start_upload(ticket, 1000)
    client.send(b"email\r\n")
    response = client.response()  # and then nothing
    client.close()
    _assert_house_error(response, 408, "request_timeout")
    assert response.closed and 0.9 < response.elapsed < 5
    _nothing_half_written(rt, tmp_path, ticket["file_id"])


def test_a_slow_but_steady_upload_is_not_cut_off(server_factory: ServerFactory) -> None:
    """The rule is a rate per span, not a deadline for the whole body."""
    _rt, api = server_factory.start(
        request_body_timeout_seconds=1.0, request_body_min_bytes_per_second=64
    )
    ticket = _file_ticket(api)
    data = csv_bytes([["email"]] + [[f"user{i}@example.com"] for i in range(45)])
    client = _start_upload(ticket, len(data))
    step = 80  # 80 bytes every 0.25 s: 320 a second, over about 3 s in all
    for start in range(0, len(data), step):
        assert client.send(data[start : start + step])
        time.sleep(0.25)
    response = client.response()
    client.close()
    assert response.status == 201, response
    assert response.elapsed > 2


def test_a_slow_json_body_is_cut_off_too(server_factory: ServerFactory) -> None:
    _rt, api = server_factory.start(
        request_body_timeout_seconds=1.0, request_body_min_bytes_per_second=64
    )
    body = json.dumps({"template_id": "tpl_x", "file_id": "fil_x"}).encode()
    client = RawClient(_campaign_url(api))
    headers = _auth(api) | {"Content-Type": "application/json", "Content-Length": str(len(body))}
    client.send(request_head("POST", _campaign_url(api), headers))
    client.trickle(body, every_seconds=0.2, until=10)
    response = client.response()
    client.close()
    _assert_house_error(response, 408, "request_timeout")
