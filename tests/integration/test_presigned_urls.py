"""Presigned upload URLs against the real app: each URL is good for one key, one content type,
one size limit and one upload before its expiry; any change to it, or any second use, is
refused with a code and leaves the resource as it was."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from postroom.db.tables import files
from postroom.runtime import Runtime
from tests.integration.test_api_contract import SIMPLE_CSV, error_code, with_query
from tests.support.api_client import ApiClient


def file_ticket(api: ApiClient) -> dict[str, str]:
    response = api.http.post(
        "/api/v1/files/presigned-url", json={"filename": "list.csv", "content_type": "text/csv"}
    )
    assert response.status_code == 201, response.text
    ticket: dict[str, str] = response.json()
    return ticket


def file_status(rt: Runtime, file_id: str) -> str:
    with rt.db.read() as conn:
        status: str = conn.execute(select(files.c.status).where(files.c.id == file_id)).scalar_one()
    return status


def test_a_signature_is_good_for_its_own_key_only(runtime: Runtime, client: ApiClient) -> None:
    first, second = file_ticket(client), file_ticket(client)
    first_url, second_url = urlsplit(first["upload_url"]), urlsplit(second["upload_url"])
    # The first URL's signature on the second URL's key.
    swapped = first_url._replace(path=second_url.path).geturl()
    response = httpx.put(swapped, content=SIMPLE_CSV, headers=first["headers"])
    assert response.status_code == 403
    assert error_code(response) == "invalid_signature"
    assert file_status(runtime, second["file_id"]) == "pending_upload"


@pytest.mark.parametrize(
    "change",
    [
        {"sig": "0" * 64},
        {"sig": ""},
        {"ct": "text/html"},
        {"max": "0"},
        {"expires": "99999999999"},
        {"expires": "１２３"},  # noqa: RUF001 - full-width digits, refused as a number
    ],
    ids=["forged-sig", "empty-sig", "other-type", "smaller-max", "later-expiry", "wide-digits"],
)
def test_any_changed_parameter_breaks_the_signature(
    runtime: Runtime, client: ApiClient, change: dict[str, str]
) -> None:
    ticket = file_ticket(client)
    headers = {"Content-Type": change.get("ct", "text/csv")}
    response = httpx.put(with_query(ticket["upload_url"], **change), content=b"x", headers=headers)
    assert response.status_code == 403
    assert error_code(response) == "invalid_signature"
    assert file_status(runtime, ticket["file_id"]) == "pending_upload"


def test_a_url_without_its_signature_parameters_is_refused(
    runtime: Runtime, client: ApiClient
) -> None:
    ticket = file_ticket(client)
    bare = urlsplit(ticket["upload_url"])._replace(query="").geturl()
    response = httpx.put(bare, content=SIMPLE_CSV, headers=ticket["headers"])
    assert response.status_code == 403
    assert file_status(runtime, ticket["file_id"]) == "pending_upload"


@pytest.mark.parametrize(
    "path",
    ["/uploads/..%2F..%2Fetc%2Fpasswd", "/uploads/files/../../x", "/uploads/.hidden", "/uploads/"],
)
def test_keys_that_could_leave_the_store_are_not_found(client: ApiClient, path: str) -> None:
    base = client.http.base_url
    response = httpx.put(f"{base}{path}", content=b"x", headers={"Content-Type": "text/csv"})
    assert response.status_code in (404, 405)


def test_a_file_url_is_used_once_even_after_processing(runtime: Runtime, client: ApiClient) -> None:
    ticket = file_ticket(client)
    first = httpx.put(ticket["upload_url"], content=SIMPLE_CSV, headers=ticket["headers"])
    assert first.status_code == 201
    assert file_status(runtime, ticket["file_id"]) == "uploaded"
    again = httpx.put(
        ticket["upload_url"], content=b"email\nevil@example.com\n", headers=ticket["headers"]
    )
    assert again.status_code == 409
    assert error_code(again) == "already_uploaded"
