"""The whole flow over HTTP, as a client would drive it, with a real SMTP relay."""

from __future__ import annotations

import csv
import io

import httpx

from postroom.runtime import Runtime
from tests.integration.conftest import new_client
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer
from tests.support.smtp_relay import SmtpRelay

TEMPLATE = """<!doctype html>
<html><head><style>p {color: red}</style></head>
<body><h1>Hello {{ first_name }}!</h1>
<p>Your plan: <b>{{ plan }}</b>. Your address is {{ email }}.</p>
<p><a href="https://example.com/account">Your account</a></p></body></html>
"""

CSV_ROWS = [
    ["E-mail", "First Name", "Plan"],
    ["ana@example.com", "Ana", "gold"],
    ["not-an-address", "Bad", "none"],
    ["bo@example.org", "Bø", "silver"],
    ["ANA@example.com", "Ana again", "gold"],  # duplicate of row 2, differs in case
    ["carl@example.net, dee@example.net", "Two", "x"],  # two addresses in one cell
    ["=cmd@example.com", "Formula", "x"],  # a valid address that starts like a formula
    ["dee@example.net", "Dee", "bronze", "extra"],  # too many fields
    ["eve@example.net", "Eve"],  # too few fields: plan is empty
    ["kai@Bücher.example", "Kai", "gold"],  # an internationalised domain
]


def csv_bytes(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


def test_campaign_end_to_end_over_smtp(
    relay_server: tuple[Runtime, LiveServer], smtp_relay: SmtpRelay
) -> None:
    rt, server = relay_server
    api: ApiClient = new_client(rt, server)

    template_id = api.upload_template(TEMPLATE, subject="Welcome, {{ first_name }} ✉")
    template = api.http.get(f"/api/v1/templates/{template_id}").json()
    assert template["status"] == "ready", template
    assert template["variables"] == ["email", "first_name", "plan"]
    assert len(template["sha256"]) == 64

    file_id = api.upload_file(csv_bytes(CSV_ROWS))
    created = api.create_campaign(
        template_id=template_id,
        file_id=file_id,
        name="Welcome wave",
        **{"from": {"email": "team@example.com", "name": "Équipe Postroom"}},
        reply_to="help@example.com",
    )
    assert created.status_code == 202, created.text
    accepted = created.json()
    assert accepted["status"] == "processing"
    assert accepted["status_url"].endswith(f"/api/v1/campaigns/{accepted['transaction_id']}/status")

    status = api.wait(accepted["transaction_id"])
    assert status["status"] == "completed", status
    assert status["file"] == {
        "rows": 9,
        "valid": 5,
        "invalid": 3,
        "duplicates": 1,
        "columns": ["e_mail", "first_name", "plan"],
        "warnings": [],
        "errors_url": status["file"]["errors_url"],
    }
    assert status["counts"]["sent"] == 5
    assert status["counts"]["total"] == 5
    assert status["progress"] == 1.0

    received = {r.recipients[0]: r for r in smtp_relay.received}
    assert sorted(received) == [
        "=cmd@example.com",
        "ana@example.com",
        "bo@example.org",
        "eve@example.net",
        "kai@xn--bcher-kva.example",
    ]
    for item in received.values():
        assert item.sender == "team@example.com"
        assert len(item.recipients) == 1
    ana = received["ana@example.com"].message
    assert str(ana["Subject"]) == "Welcome, Ana ✉"
    assert ana["To"].addresses[0].addr_spec == "ana@example.com"
    assert ana["From"].addresses[0].display_name == "Équipe Postroom"
    assert ana["Reply-To"].addresses[0].addr_spec == "help@example.com"
    assert ana["Message-ID"] and ana["Date"] and ana["MIME-Version"] == "1.0"
    assert ana.get_content_type() == "multipart/alternative"
    html = ana.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = ana.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Hello Ana!" in html and "<b>gold</b>" in html
    assert "Hello Ana!" in text and "Your account (https://example.com/account)" in text
    assert "color: red" not in text
    bo = received["bo@example.org"].message
    assert str(bo["Subject"]) == "Welcome, Bø ✉"

    messages = api.messages(accepted["transaction_id"])
    assert [m["status"] for m in messages] == ["sent"] * 5
    assert messages[-1]["email"] == "kai@bücher.example"
    kai = received["kai@xn--bcher-kva.example"].message
    assert kai["To"].addresses[0].addr_spec == "kai@xn--bcher-kva.example"
    assert all(m["attempts"] == 1 and m["message_id"] and m["sent_at"] for m in messages)
    assert {m["message_id"] for m in messages} == {
        r.message["Message-ID"].strip("<>") for r in received.values()
    }
    assert all("queued as TEST" in m["relay_reply"] for m in messages)

    report = api.http.get(status["file"]["errors_url"])
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(report.text)))
    assert rows[0] == ["row", "email", "reason", "detail"]
    by_row = {int(r[0]): r for r in rows[1:]}
    assert by_row[3][2] == "invalid_email"
    assert by_row[5][2] == "duplicate" and "row 2" in by_row[5][3]
    assert by_row[6][2] == "multiple_addresses"
    assert by_row[8][2] == "too_many_fields"
    assert set(by_row) == {3, 5, 6, 8}
    api.close()


def test_errors_url_needs_the_owning_tenant(
    relay_server: tuple[Runtime, LiveServer],
) -> None:
    rt, server = relay_server
    owner = new_client(rt, server, "owner")
    stranger = new_client(rt, server, "stranger")
    template_id = owner.upload_template("<p>{{ email }}</p>", subject="Hi")
    rows = [["email"], ["x@example.com"], ["bad"], ['=HYPERLINK("http://evil.test")'], ["+1"]]
    file_id = owner.upload_file(csv_bytes(rows))
    campaign_id = owner.create_campaign(template_id=template_id, file_id=file_id).json()[
        "transaction_id"
    ]
    status = owner.wait(campaign_id)
    assert httpx.get(status["file"]["errors_url"]).status_code == 401
    assert stranger.http.get(status["file"]["errors_url"]).status_code == 404
    report = owner.http.get(status["file"]["errors_url"])
    assert report.status_code == 200
    cells = [row[1] for row in csv.reader(io.StringIO(report.text))][1:]
    # Spreadsheets would run these as formulas: they come out neutralised.
    assert cells == ["bad", '\'=HYPERLINK("http://evil.test")', "'+1"]
    owner.close()
    stranger.close()
