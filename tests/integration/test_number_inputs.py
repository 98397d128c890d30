"""Numbers read from URLs are ASCII digits only: a Unicode digit such as a superscript "¹"
(which str.isdigit accepts and int() refuses) gets a 4xx with a code, never a 500. Found by
schemathesis on the audit log's cursor."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer

ODD_DIGITS = ("¹", "٣", "1¹", "9" * 40)


def test_cursors_and_ids_refuse_non_ascii_digits(
    client: ApiClient, live_server: LiveServer
) -> None:
    hook = client.http.post(
        "/api/v1/webhooks", json={"url": "https://example.com/h", "events": ["*"]}
    ).json()
    for odd in ODD_DIGITS:
        for path in ("/api/v1/audit", f"/api/v1/webhooks/{hook['id']}/deliveries"):
            answer = client.http.get(path, params={"cursor": odd})
            assert answer.status_code == 400, (path, odd, answer.text)
            assert answer.json()["error"]["code"] == "invalid_cursor"
        unsubscribe = httpx.post(f"{live_server.url}/u/{odd}.abc")
        assert unsubscribe.status_code == 404, (odd, unsubscribe.text)


def test_an_upload_url_with_an_odd_expiry_is_refused(client: ApiClient) -> None:
    ticket = client.http.post(
        "/api/v1/files/presigned-url", json={"filename": "l.csv", "content_type": "text/csv"}
    ).json()
    parts = urlsplit(ticket["upload_url"])
    query = dict(parse_qsl(parts.query))
    expiry = next(name for name in query if name.startswith("exp"))
    for odd in ODD_DIGITS[:2]:
        query[expiry] = odd
        url = parts._replace(query=urlencode(query)).geturl()
        put = httpx.put(url, content=b"email\na@example.com\n", headers=ticket["headers"])
        assert put.status_code == 403, (odd, put.text)
