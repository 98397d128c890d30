"""One-click unsubscribe: every message carries its own signed link (RFC 8058 headers and
``{{ unsubscribe_url }}``); a POST unsubscribes at once, a GET only asks; forged links are
refused; the address is suppressed and counted once."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage

from postroom.runtime import Runtime
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient
from tests.support.outbox import outbox_dir


def sent_messages(rt: Runtime) -> dict[str, EmailMessage]:
    out = {}
    for path in outbox_dir(rt).glob("*.eml"):
        parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        out[str(parsed["To"])] = parsed
    return out


def test_a_recipient_unsubscribes_with_one_click(runtime: Runtime, client: ApiClient) -> None:
    template_id = client.upload_template(
        '<p>Hi</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>', "Hi"
    )
    file_id = client.upload_file(csv_bytes([["email"], ["ann@example.com"], ["bo@example.com"]]))
    campaign_id = client.create_campaign(template_id=template_id, file_id=file_id).json()[
        "transaction_id"
    ]
    assert client.wait(campaign_id)["status"] == "completed"
    sent = sent_messages(runtime)
    ann, bo = sent["ann@example.com"], sent["bo@example.com"]
    assert ann["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    (url,) = re.findall(r"<(https?://[^>]+)>", str(ann["List-Unsubscribe"]))
    assert url.startswith(f"{runtime.settings.base_url}/u/")
    assert str(ann["List-Unsubscribe"]) == f"<{url}>"  # no bounce address: no mailto form
    html_part = ann.get_body(("html",))
    assert html_part is not None and url in html_part.get_content()
    assert url not in str(bo["List-Unsubscribe"])  # each message its own link

    path = url.removeprefix(runtime.settings.base_url)
    page = client.http.get(path)
    assert page.status_code == 200 and '<form method="post">' in page.text
    assert client.status(campaign_id)["counts"]["unsubscribed"] == 0  # a GET only asks
    done = client.http.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and "ann@example.com" in done.text
    assert client.http.post(path).status_code == 200  # a repeat is harmless
    status = client.status(campaign_id)
    assert status["counts"]["unsubscribed"] == 1
    listed = client.http.get("/api/v1/suppressions").json()["suppressions"]
    assert [(s["email"], s["reason"]) for s in listed] == [("ann@example.com", "unsubscribe")]
    events = client.http.get(
        f"/api/v1/campaigns/{campaign_id}/events", params={"type": "unsubscribed"}
    ).json()["events"]
    assert len(events) == 1 and events[0]["recipient"] == "ann@example.com"


def test_forged_and_altered_links_are_refused(runtime: Runtime, client: ApiClient) -> None:
    template_id = client.upload_template("<p>Hi</p>", "Hi")
    file_id = client.upload_file(csv_bytes([["email"], ["ann@example.com"]]))
    campaign_id = client.create_campaign(template_id=template_id, file_id=file_id).json()[
        "transaction_id"
    ]
    client.wait(campaign_id)
    (url,) = re.findall(
        r"<(https?://[^>]+)>", str(sent_messages(runtime)["ann@example.com"]["List-Unsubscribe"])
    )
    token = url.rsplit("/", 1)[1]
    pk, signature = token.split(".")
    for forged in (
        f"{int(pk) + 1}.{signature}",  # another message with this one's signature
        f"{pk}.{signature[:-2]}AA",
        f"{pk}.{signature[:-1]}\u00e9",  # non-ASCII: once a 500 from hmac.compare_digest
        pk,
        "x.y",
        "",
    ):
        response = client.http.post(f"/u/{forged}")
        assert response.status_code == 404, forged
    assert client.status(campaign_id)["counts"]["unsubscribed"] == 0
