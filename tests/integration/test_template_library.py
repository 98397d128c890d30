"""Layouts and partials through the real app: a template extends and includes the tenant's own
templates, pinned at upload, and the mail sent is what was checked; another tenant's, unknown,
circular or too deep templates make it invalid; previews (console and CLI) render the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from typer.testing import CliRunner

from postroom.cli.main import app
from postroom.console.preview import first_recipient_preview
from postroom.db.tables import templates
from postroom.runtime import Runtime
from tests.integration.conftest import new_client
from tests.integration.test_campaign_flow import csv_bytes
from tests.integration.test_template_preview import html_of, parsed, text_of
from tests.integration.test_unsubscribe import sent_messages
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer

FOOTER = '<p class="footer">Sent to {{ email }} ({{ plan }}) · footer v1</p>'
BASE = (
    "<html><body><h1>{{ title }}</h1>{% block content %}{% endblock %}"
    '{% include "footer" %}</body></html>'
)
WELCOME = (
    '{% extends "base" %}{% set title = "Welcome" %}{% import "buttons" as b %}'
    "{% block content %}<p>Hello {{ first_name }}</p>"
    '{{ b.button("https://example.com/start", "Start") }}{% endblock %}'
)
BUTTONS = (
    '{% macro button(url, text) %}<a class="button" href="{{ url }}">{{ text }}</a>{% endmacro %}'
)
ROWS = [
    ["email", "first_name", "plan"],
    ["ann@example.com", "Ann", "gold"],
    ["bo@example.com", "Bo", "silver"],
]


def template(api: ApiClient, template_id: str) -> dict[str, Any]:
    body: dict[str, Any] = api.http.get(f"/api/v1/templates/{template_id}").json()
    return body


def send(api: ApiClient, template_id: str, rows: list[list[str]]) -> dict[str, Any]:
    file_id = api.upload_file(csv_bytes(rows))
    created = api.create_campaign(
        template_id=template_id, file_id=file_id, track_opens=False, track_clicks=False
    )
    assert created.status_code == 202, created.text
    return api.wait(created.json()["transaction_id"])


def upload_layouts(api: ApiClient) -> dict[str, str]:
    ids = {
        "footer": api.upload_template(FOOTER, "(a partial)", name="footer"),
        "buttons": api.upload_template(BUTTONS, "(macros)", name="buttons"),
    }
    ids["base"] = api.upload_template(BASE, "(a layout)", name="base")
    ids["welcome"] = api.upload_template(WELCOME, "Hi {{ first_name }}", name="welcome")
    return ids


def test_a_campaign_renders_its_layout_and_partials_as_pinned(
    runtime: Runtime, client: ApiClient
) -> None:
    ids = upload_layouts(client)
    welcome = template(client, ids["welcome"])
    assert welcome["status"] == "ready", welcome
    assert welcome["dependencies"] == {"base": ids["base"], "buttons": ids["buttons"]}
    # The layout's and the footer's fields are the template's too; "title" it sets itself.
    assert welcome["variables"] == ["email", "first_name", "plan"]
    assert template(client, ids["base"])["dependencies"] == {"footer": ids["footer"]}

    assert send(client, ids["welcome"], ROWS)["status"] == "completed"
    sent = sent_messages(runtime)
    for email, name, plan in ROWS[1:]:
        html, text = html_of(sent[email]), text_of(sent[email])
        assert sent[email]["Subject"] == f"Hi {name}"
        assert "<h1>Welcome</h1>" in html and f"<p>Hello {name}</p>" in html
        assert '<a class="button" href="https://example.com/start">Start</a>' in html
        assert f"Sent to {email} ({plan}) · footer v1" in html
        assert f"Sent to {email} ({plan}) · footer v1" in text and "<p" not in text

    # A newer "footer" changes nothing that was checked before it...
    newer = client.upload_template(FOOTER.replace("v1", "v2"), "(a partial)", name="footer")
    assert template(client, newer)["status"] == "ready"
    later = [["email", "first_name", "plan"], ["cy@example.com", "Cy", "gold"]]
    assert send(client, ids["welcome"], later)["status"] == "completed"
    assert "footer v1" in html_of(sent_messages(runtime)["cy@example.com"])
    # ...a new template pins the newest one, but a layout keeps the footer it pinned.
    direct = client.upload_template(
        '<p>{{ first_name }}</p>{% include "footer" %}', "Hi", name="direct"
    )
    assert template(client, direct)["dependencies"] == {"footer": newer}
    promo = client.upload_template(
        '{% extends "base" %}{% block content %}Promo{% endblock %}', "P", name="promo"
    )
    assert template(client, promo)["dependencies"] == {"base": ids["base"]}
    header = ["email", "first_name", "plan", "title"]
    assert (
        send(client, direct, [header, ["dee@example.com", "Dee", "gold", "Sale"]])["status"]
        == "completed"
    )
    assert (
        send(client, promo, [header, ["eve@example.com", "Eve", "gold", "Sale"]])["status"]
        == "completed"
    )
    sent = sent_messages(runtime)
    assert "footer v2" in html_of(sent["dee@example.com"])
    assert "footer v1" in html_of(sent["eve@example.com"])


def test_the_columns_a_partial_uses_are_checked_at_campaign_creation(client: ApiClient) -> None:
    ids = upload_layouts(client)
    status = send(client, ids["welcome"], [["email", "first_name"], ["ann@example.com", "Ann"]])
    assert status["status"] == "failed"
    assert status["error"]["code"] == "missing_columns"
    assert "plan" in status["error"]["message"]


def test_another_tenants_templates_cannot_be_loaded(
    runtime: Runtime, live_server: LiveServer, client: ApiClient
) -> None:
    theirs = upload_layouts(client)
    other = new_client(runtime, live_server, "other")
    try:
        footer, buttons, unknown = theirs["footer"], theirs["buttons"], "tpl_00000000000000000"
        cases = {
            f'<p>x</p>\n{{% include "{footer}" %}}': f"there is no template '{footer}'",
            '{% extends "base" %}': "there is no ready template named 'base'",
            f'{{% import "{buttons}" as b %}}': f"there is no template '{buttons}'",
            # An id that never was reads the same: no way to tell another tenant's exists.
            f'{{% include "{unknown}" %}}': f"there is no template '{unknown}'",
        }
        for html, message in cases.items():
            found = template(other, other.upload_template(html, "s", name="sneaky"))
            assert found["status"] == "invalid", found
            assert found["errors"] == [
                {"line": html.count("\n") + 1, "part": "html", "message": message}
            ]
        # Its own "footer" is its own, however recent the first tenant's is.
        own = other.upload_template("<p>our footer</p>", "s", name="footer")
        client.upload_template("<p>their newer footer</p>", "s", name="footer")
        mine = template(other, other.upload_template('{% include "footer" %}', "s", name="mine"))
        assert mine["status"] == "ready" and mine["dependencies"] == {"footer": own}
    finally:
        other.close()


def presign(api: ApiClient, name: str) -> dict[str, Any]:
    ticket = api.http.post("/api/v1/templates/presigned-url", json={"name": name, "subject": "s"})
    assert ticket.status_code == 201, ticket.text
    body: dict[str, Any] = ticket.json()
    return body


def put(ticket: dict[str, Any], html: str) -> None:
    response = httpx.put(ticket["upload_url"], content=html.encode(), headers=ticket["headers"])
    assert response.status_code in (200, 201), response.text


def test_circles_depth_and_unknown_names_make_a_template_invalid(client: ApiClient) -> None:
    def errors(html: str, name: str = "t") -> list[dict[str, Any]]:
        found = template(client, client.upload_template(html, "s", name=name))
        assert found["status"] == "invalid", found
        return list(found["errors"])

    assert errors('<p>one</p>\n<p>two</p>\n{% include "nope" %}') == [
        {"line": 3, "part": "html", "message": "there is no ready template named 'nope'"}
    ]
    ticket = presign(client, "loop")
    put(ticket, f'{{% include "{ticket["template_id"]}" %}}')
    assert (
        template(client, ticket["template_id"])["errors"][0]["message"]
        == "a template cannot load itself"
    )

    pending = presign(client, "pending")["template_id"]
    assert (
        errors(f'{{% include "{pending}" %}}')[0]["message"]
        == f"the template {pending!r} is pending_upload, not ready"
    )
    invalid = client.upload_template("{% if %}", "s", name="broken")
    assert (
        errors('{% include "broken" %}')[0]["message"]
        == "there is no ready template named 'broken'"
    )
    assert (
        errors(f'{{% include "{invalid}" %}}')[0]["message"]
        == f"the template {invalid!r} is invalid, not ready"
    )

    previous = client.upload_template("<p>level 0</p>", "s", name="level0")
    for level in range(1, 6):
        previous = client.upload_template(
            f'{{% include "level{level - 1}" %}}', "s", name=f"level{level}"
        )
        assert template(client, previous)["status"] == "ready"
    assert errors('{% include "level5" %}') == [
        {"line": 1, "part": "html", "message": "templates may nest at most 5 deep"}
    ]
    assert "quotes" in errors("{% include name %}")[0]["message"]
    assert "ignore missing" in errors('{% include "level0" ignore missing %}')[0]["message"]
    refused = client.http.post(
        "/api/v1/templates/presigned-url", json={"name": "s", "subject": '{% include "level0" %}'}
    )
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_subject"
    assert "cannot be used in the subject" in refused.json()["error"]["message"]


def test_the_console_preview_renders_layouts_and_partials(
    runtime: Runtime, client: ApiClient
) -> None:
    ids = upload_layouts(client)
    file_id = client.upload_file(csv_bytes(ROWS))
    created = client.create_campaign(template_id=ids["welcome"], file_id=file_id, hold=True)
    campaign_id = created.json()["transaction_id"]
    assert client.wait(campaign_id, until=("held",))["status"] == "held"
    with runtime.db.read_latest() as conn:
        tenant_id = conn.execute(
            select(templates.c.tenant_id).where(templates.c.id == ids["welcome"])
        ).scalar_one()
    preview = first_recipient_preview(runtime, tenant_id, campaign_id)
    assert preview is not None and preview.problem is None, preview
    assert preview.subject == "Hi Ann"
    assert preview.html is not None
    assert (
        "<h1>Welcome</h1>" in preview.html
        and "Sent to ann@example.com (gold) · footer v1" in preview.html
    )


def test_the_cli_preview_reads_layouts_and_partials_beside_the_template(
    runtime: Runtime, client: ApiClient, tmp_path: Path
) -> None:
    for name, html in {
        "footer": FOOTER,
        "base": BASE,
        "buttons": BUTTONS,
        "welcome": WELCOME,
    }.items():
        (tmp_path / f"{name}.html").write_text(html)
    (tmp_path / "row.json").write_text(
        json.dumps({"email": "ann@example.com", "first_name": "Ann", "plan": "gold"})
    )
    args = [
        "template",
        "preview",
        str(tmp_path / "welcome.html"),
        "--subject",
        "Hi {{ first_name }}",
    ]
    args += ["--data", str(tmp_path / "row.json"), "--out", str(tmp_path / "out"), "--json"]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["variables"] == ["email", "first_name", "plan"]
    local_html = Path(report["files"]["html"]).read_text()
    local_text = Path(report["files"]["text"]).read_text()

    ids = upload_layouts(client)
    assert send(client, ids["welcome"], ROWS)["status"] == "completed"
    sent = sent_messages(runtime)["ann@example.com"]
    assert "<h1>Welcome</h1>" in local_html and "Sent to ann@example.com (gold)" in local_html
    local_message = parsed(Path(report["files"]["message"]))
    assert text_of(local_message) == text_of(sent) and "footer v1" in local_text

    # A name with no file beside it, or a circle of files, is reported like the API would.
    (tmp_path / "base.html").write_text('{% include "welcome" %}')
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 1 and "circle" in result.output, result.output
    (tmp_path / "welcome.html").write_text('{% include "../footer" %}')
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 1 and "there is no ../footer.html" in result.output, result.output
