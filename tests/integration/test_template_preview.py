"""`postroom template preview`: a template rendered locally for one recipient is what a
campaign sends that recipient, and every reason a campaign would refuse it is reported."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from typer.testing import CliRunner

from postroom.cli.main import app
from postroom.runtime import Runtime
from tests.integration.test_campaign_flow import CSV_ROWS, TEMPLATE, csv_bytes
from tests.integration.test_unsubscribe import sent_messages
from tests.support.api_client import ApiClient

SUBJECT = "Hello {{ first_name }}, your {{ plan }} plan"


def preview(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["template", "preview", *args, "--out", str(tmp_path / "out")], catch_exceptions=False
    )
    return result.exit_code, result.output


def parsed(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def test_the_preview_is_what_the_campaign_sends(
    runtime: Runtime, client: ApiClient, tmp_path: Path
) -> None:
    (tmp_path / "welcome.html").write_text(TEMPLATE)
    (tmp_path / "list.csv").write_bytes(csv_bytes(CSV_ROWS))
    code, output = preview(
        tmp_path,
        str(tmp_path / "welcome.html"),
        "--subject",
        SUBJECT,
        "--csv",
        str(tmp_path / "list.csv"),
        "--row",
        "4",
        "--json",
    )
    assert code == 0, output
    report = json.loads(output)
    assert report["recipient"] == "bo@example.org"
    assert report["variables"] == ["email", "first_name", "plan"]
    local = parsed(Path(report["files"]["message"]))
    assert local["Subject"] == "Hello Bø, your silver plan"
    assert Path(report["files"]["html"]).read_text().count("Hello Bø!") == 1

    template_id = client.upload_template(TEMPLATE, SUBJECT)
    file_id = client.upload_file(csv_bytes(CSV_ROWS))
    untracked = {"track_opens": False, "track_clicks": False}  # tracking changes the HTML
    created = client.create_campaign(template_id=template_id, file_id=file_id, **untracked)
    campaign_id = created.json()["transaction_id"]
    assert client.wait(campaign_id)["status"] == "completed"
    sent = sent_messages(runtime)["bo@example.org"]
    assert sent["Subject"] == local["Subject"]
    assert text_of(sent) == text_of(local)
    assert html_of(sent) == html_of(local)
    assert Path(report["files"]["text"]).read_text() == text_of(local).replace("\r\n", "\n")


def test_the_first_valid_row_is_the_default(tmp_path: Path) -> None:
    (tmp_path / "t.html").write_text("<p>Hi {{ first_name }}</p>")
    (tmp_path / "list.csv").write_bytes(
        csv_bytes([["Email", "First Name"], ["ann@example.com", "Ann"]])
    )
    code, output = preview(
        tmp_path, str(tmp_path / "t.html"), "--subject", "Hi", "--csv", str(tmp_path / "list.csv")
    )
    assert code == 0, output
    assert "ann@example.com" in output and "list.csv row 2" in output
    assert (tmp_path / "out" / "t.preview.html").read_text() == "<p>Hi Ann</p>"
    assert (tmp_path / "t.html").read_text() == "<p>Hi {{ first_name }}</p>"  # untouched


@pytest.mark.parametrize(
    ("template", "data", "args", "code"),
    [
        ("<p>{{ plan }}</p>", {"email": "a@example.com"}, [], "missing_columns"),
        ("<p>{% if %}</p>", {"email": "a@example.com"}, [], "template_invalid"),
        ("<p>Hi</p>", {"name": "no address"}, [], "missing_email"),
        ("<p>Hi</p>", {"email": "a@example.com", "tags": [1]}, [], "invalid_json"),
        ("<p>Hi</p>", [1, 2], [], "invalid_json"),
        ("<p>Hi</p>", {"email": "a@example.com"}, ["--row", "2"], "usage"),
    ],
)
def test_json_rows_that_a_campaign_would_refuse(
    tmp_path: Path, template: str, data: object, args: list[str], code: str
) -> None:
    (tmp_path / "t.html").write_text(template)
    (tmp_path / "row.json").write_text(json.dumps(data))
    exit_code, output = preview(
        tmp_path,
        str(tmp_path / "t.html"),
        "--subject",
        "Hi",
        "--data",
        str(tmp_path / "row.json"),
        *args,
    )
    assert exit_code == 1
    assert f"({code})" in output
    assert not (tmp_path / "out").exists()  # nothing half-written


@pytest.mark.parametrize(
    ("rows", "args", "code"),
    [
        ([["email"], ["not-an-address"]], ["--row", "2"], "invalid_email"),
        ([["email"], ["a@example.com"]], ["--row", "9"], "row_not_found"),
        ([["name"], ["Ann"]], [], "no_email_column"),
    ],
)
def test_csv_rows_that_a_campaign_would_refuse(
    tmp_path: Path, rows: list[list[str]], args: list[str], code: str
) -> None:
    (tmp_path / "t.html").write_text("<p>Hi</p>")
    (tmp_path / "list.csv").write_bytes(csv_bytes(rows))
    exit_code, output = preview(
        tmp_path,
        str(tmp_path / "t.html"),
        "--subject",
        "Hi",
        "--csv",
        str(tmp_path / "list.csv"),
        *args,
    )
    assert exit_code == 1
    assert f"({code})" in output


def test_missing_inputs_are_named(tmp_path: Path) -> None:
    exit_code, output = preview(tmp_path, str(tmp_path / "nope.html"), "--subject", "Hi")
    assert exit_code == 1 and "(file_not_found)" in output
    (tmp_path / "t.html").write_text("<p>Hi</p>")
    exit_code, output = preview(tmp_path, str(tmp_path / "t.html"), "--subject", "Hi")
    assert exit_code == 1 and "(usage)" in output
