"""Erasing a recipient (``DELETE /api/v1/recipients/{email}``): every trace of the address
goes from the tenant's rows and blobs, it stays suppressed as a hash, other tenants keep
theirs, and a second call finds nothing left."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import String, Text, inspect, select

from postroom.db.tables import campaigns, metadata
from postroom.events import store as events_store
from postroom.events.service import record_message_event
from postroom.events.tracking import click_token
from postroom.runtime import Runtime
from postroom.tenants.service import create_key, create_tenant
from tests.integration.conftest import new_client
from tests.integration.test_campaign_flow import csv_bytes
from tests.integration.test_tracking import BROWSER
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer
from tests.support.webhook_receiver import Answer, WebhookReceiver

TARGET = "Erin.Target@Example.com"
NEEDLE = "erin.target@example.com"


def campaign(api: ApiClient, rows: list[list[str]], **body: Any) -> str:
    template_id = api.upload_template("<p>Hi {{ name }}</p>", "Hi {{ name }}")
    file_id = api.upload_file(csv_bytes([["email", "name"], *rows]))
    response = api.create_campaign(template_id=template_id, file_id=file_id, **body)
    assert response.status_code == 202, response.text
    campaign_id: str = response.json()["transaction_id"]
    return campaign_id


def plaintext_in_database(rt: Runtime) -> list[str]:
    """Every table and column whose text holds the address, in any case."""
    found = []
    with rt.db.read() as conn:
        for table in metadata.sorted_tables:
            columns = [
                c
                for c in table.columns
                if isinstance(c.type, String | Text) or "JSON" in repr(c.type)
            ]
            if not columns or not inspect(conn).has_table(table.name):
                continue
            for row in conn.execute(select(*columns)):
                for column, value in zip(columns, row, strict=True):
                    if value is not None and NEEDLE in str(value).lower():
                        found.append(f"{table.name}.{column.name}")
    return found


def plaintext_in_blobs(rt: Runtime, root: Path) -> list[str]:
    """Blobs holding the address, read through the store (they are encrypted at rest, so the
    bytes on disk never show it: what matters is what the store gives back)."""
    needle = NEEDLE.encode()
    keys = [
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and not path.name.startswith(".")
    ]
    return [key for key in keys if needle in rt.blobs.read_bytes(key).lower()]


def source_file(rt: Runtime, campaign_id: str) -> str:
    with rt.db.read() as conn:
        file_id: str = conn.execute(
            select(campaigns.c.file_id).where(campaigns.c.id == campaign_id)
        ).scalar_one()
    return file_id


def wait_for(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_an_erased_address_leaves_no_trace_and_stays_suppressed(
    runtime: Runtime, live_server: LiveServer, client: ApiClient, tmp_path: Path
) -> None:
    with WebhookReceiver(lambda _n: Answer(status=500)) as receiver:
        hook = client.http.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["*"]})
        assert hook.status_code == 201, hook.text
        # A manual suppression removed again: the audit log named the address in its target.
        client.http.post("/api/v1/suppressions", json={"email": TARGET})
        assert client.http.delete(f"/api/v1/suppressions/{TARGET}").status_code == 204
        sent = campaign(
            client,
            [[TARGET, "Erin"], ["other@example.com", "Olga"], [NEEDLE.upper(), "Erin again"]],
            metadata={"requested_by": TARGET, "note": f"call {NEEDLE} back", "batch": "b-12"},
        )
        client.wait(sent)
        wait_for(lambda: receiver.received)  # a delivery was tried and is pending again
        waiting = campaign(
            client,
            [["other@example.com", "Olga"], [TARGET, "Erin"]],
            send_at="2099-01-01T00:00:00Z",
        )
        client.wait(waiting, until=("scheduled",))
        assert plaintext_in_database(runtime) and plaintext_in_blobs(runtime, tmp_path / "blobs")

        answer = client.http.delete(f"/api/v1/recipients/{TARGET}")
        assert answer.status_code == 200, answer.text
        report = answer.json()
    counts = report["counts"]
    assert report["erased"].startswith("erased:")
    assert counts["messages"] == 2 and counts["messages_stopped"] == 1
    assert counts["events"] >= 1 and counts["webhook_deliveries"] >= 1
    assert counts["files_rewritten"] == 2 and counts["row_issues"] == 1
    assert counts["suppressions"] == 1 and counts["audit_entries"] >= 1
    assert counts["campaign_metadata"] == 1 and counts["webhook_payloads"] >= 1
    assert counts["outbox_messages"] == 1
    outbox = Path(runtime.settings.transport_url.removeprefix("capture://"))
    captured = [p for p in outbox.iterdir() if p.suffix in (".eml", ".json")]
    assert len(captured) == 2  # Olga's message and its envelope
    assert not [p for p in captured if NEEDLE in p.read_text(errors="replace").lower()]
    assert client.status(sent)["metadata"] == {
        "requested_by": "[erased]",
        "note": "call [erased] back",
        "batch": "b-12",
    }

    assert plaintext_in_database(runtime) == []
    assert plaintext_in_blobs(runtime, tmp_path / "blobs") == []
    # Counts are whole: the message rows stayed, the waiting one is suppressed.
    assert client.status(sent)["counts"]["sent"] == 2
    waiting_counts = client.status(waiting)["counts"]
    assert (waiting_counts["queued"], waiting_counts["suppressed"]) == (1, 1)
    erased = [m for m in client.messages(waiting) if m["status"] == "suppressed"]
    assert len(erased) == 1 and erased[0]["email"].startswith("erased:")
    # The rewritten file keeps its other rows, and their row numbers (a blank line each).
    file_id = source_file(runtime, sent)
    content = client.http.get(f"/api/v1/files/{file_id}/content")
    assert content.status_code == 200
    assert content.text == "email,name\r\n\r\nother@example.com,Olga\r\n\r\n"

    listed = client.http.get("/api/v1/suppressions").json()["suppressions"]
    assert [(s["email"], s["erased"]) for s in listed] == [(None, True)]
    audit = client.http.get("/api/v1/audit").json()["entries"]
    assert audit[0]["target"] == {"erased": report["erased"]}

    again = client.http.delete(f"/api/v1/recipients/{NEEDLE.upper()}")
    assert again.status_code == 200 and again.json()["erased"] == report["erased"]
    assert set(again.json()["counts"].values()) == {0}

    later = campaign(client, [["Erin.Target@example.COM", "Erin"], ["new@example.com", "N"]])
    done = client.wait(later)
    assert done["counts"]["suppressed"] == 1 and done["counts"]["sent"] == 1
    # Taking the address off the list by its address finds the hashed entry.
    assert client.http.delete(f"/api/v1/suppressions/{TARGET}").status_code == 204
    assert client.http.get("/api/v1/suppressions").json()["suppressions"] == []


def test_a_report_after_the_erasure_does_not_bring_the_address_back(
    runtime: Runtime, live_server: LiveServer, client: ApiClient
) -> None:
    sent = campaign(client, [[TARGET, "Erin"], ["other@example.com", "Olga"]])
    client.wait(sent)
    assert client.http.delete(f"/api/v1/recipients/{TARGET}").status_code == 200
    (erased,) = [m for m in client.messages(sent) if m["email"].startswith("erased:")]
    # The provider's reports come late: one naming the address, one naming nobody.
    late = [
        ("bounced", TARGET, {"bounce_type": "hard", "diagnostic_code": f"550 <{TARGET}> gone"}),
        ("delivered", None, {"bounce_type": "x", "smtp_response": f"250 ok for {NEEDLE}"}),
    ]
    now = runtime.clock.now()
    with runtime.db.write() as conn:
        message = events_store.message_by_id(conn, erased["id"])
        for n, (kind, recipient, data) in enumerate(late):
            record_message_event(
                conn,
                message,
                kind,
                source="ses",
                recipient=recipient,
                occurred_at=now,
                now=now,
                event_key=f"late:{n}",
                data=data,
                detail=f"550 {TARGET} unknown",
            )
    assert plaintext_in_database(runtime) == []
    stored = client.http.get(f"/api/v1/campaigns/{sent}/events").json()["events"]
    late_events = [e for e in stored if e["source"] == "ses"]
    assert [e["type"] for e in late_events] == ["bounced", "delivered"]
    assert all(e["recipient"] == erased["email"] for e in late_events)
    bounce, delivery = (e["data"] for e in late_events)
    assert bounce == {"bounce_type": "hard", "diagnostic_code": "550 <[erased]> gone"}
    assert delivery == {"bounce_type": "x"}  # no address to look for: only the kind is kept


def test_a_personalised_link_loses_the_address_in_clicks_and_link_analytics(
    runtime: Runtime, live_server: LiveServer, client: ApiClient
) -> None:
    sent = campaign(client, [[TARGET, "Erin"], ["other@example.com", "Olga"]])
    client.wait(sent)
    pk_of = {m["email"].lower(): m["id"] for m in client.messages(sent)}
    encoded = quote(NEEDLE, safe="")
    plain_link = f"https://shop.example/offer?e={TARGET}&src=mail"
    encoded_link = f"https://shop.example/offer/{encoded}?src=mail"
    other_link = "https://shop.example/offer?e=other%40example.com&src=mail"
    encoded_query = f"https://shop.example/offer?e={encoded}&src=mail"  # as plain_link, once erased
    clicks = [
        (NEEDLE, plain_link),
        (NEEDLE, encoded_link),
        (NEEDLE, encoded_query),
        ("other@example.com", other_link),
    ]
    for email, url in clicks:
        path = f"/t/c/{click_token(runtime.secret_key, pk_of[email], url)}"
        hit = client.http.get(path, headers=BROWSER, follow_redirects=False)
        assert hit.status_code == 302 and hit.headers["location"] == url

    answer = client.http.delete(f"/api/v1/recipients/{TARGET}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["counts"]["link_urls"] == 3
    assert plaintext_in_database(runtime) == []
    links = client.http.get(f"/api/v1/campaigns/{sent}/analytics").json()["top_links"]
    assert sorted(links, key=lambda link: link["url"]) == [
        # Unique clicks count a message's first click only (here, on plain_link).
        {"url": "https://shop.example/offer/[erased]?src=mail", "clicks": 1, "unique_clicks": 0},
        {"url": "https://shop.example/offer?e=[erased]&src=mail", "clicks": 2, "unique_clicks": 1},
        {"url": other_link, "clicks": 1, "unique_clicks": 1},
    ]
    events = client.http.get(f"/api/v1/campaigns/{sent}/events", params={"type": "clicked"})
    urls = sorted(e["data"]["url"] for e in events.json()["events"])
    assert urls == [
        "https://shop.example/offer/[erased]?src=mail",
        "https://shop.example/offer?e=[erased]&src=mail",
        "https://shop.example/offer?e=[erased]&src=mail",
        other_link,
    ]
    assert encoded not in events.text


def test_erasure_is_the_tenants_own(
    runtime: Runtime, live_server: LiveServer, client: ApiClient
) -> None:
    other = new_client(runtime, live_server, "other")
    try:
        theirs = campaign(other, [[TARGET, "Erin"]])
        other.wait(theirs)
        answer = client.http.delete(f"/api/v1/recipients/{TARGET}")
        assert answer.status_code == 200
        assert answer.json()["counts"]["messages"] == 0
        assert [m["email"].lower() for m in other.messages(theirs)] == [NEEDLE]
        assert other.http.get("/api/v1/suppressions").json()["suppressions"] == []
        again = campaign(other, [[TARGET, "Erin"]])
        assert other.wait(again)["counts"]["sent"] == 1
    finally:
        other.close()


def test_bad_input_and_scopes(runtime: Runtime, live_server: LiveServer, client: ApiClient) -> None:
    bad = client.http.delete("/api/v1/recipients/not-an-address")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_email"
    with runtime.db.write() as conn:
        tenant_id, _ = create_tenant(conn, "scoped", runtime.clock.now())
        reader = create_key(conn, tenant_id, runtime.clock.now(), scopes=["campaigns:read"])
        writer = create_key(conn, tenant_id, runtime.clock.now(), scopes=["suppressions:write"])
        admin = create_key(conn, tenant_id, runtime.clock.now(), scopes=["admin"])
    refused = ApiClient(live_server.url, reader).http.delete(f"/api/v1/recipients/{TARGET}")
    assert refused.status_code == 403
    for key in (writer, admin):
        allowed = ApiClient(live_server.url, key).http.delete(f"/api/v1/recipients/{TARGET}")
        assert allowed.status_code == 200, allowed.text
