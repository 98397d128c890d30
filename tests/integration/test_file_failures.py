"""Every whole-file failure answers with its own code, and nothing from a bad file is sent."""

from __future__ import annotations

import codecs

import httpx
import pytest

from tests.integration.conftest import ServerFactory
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient
from tests.support.outbox import outbox_count

GOOD_TEMPLATE = "<p>Hi {{ name }}</p>"

CASES: list[tuple[str, bytes, str]] = [
    ("empty", b"", "empty_file"),
    ("only a bom", codecs.BOM_UTF8 + b"  \r\n", "empty_file"),
    ("header only", b"email,name\r\n\r\n", "no_recipients"),
    ("no email column", b"mail_to,name\r\na@example.com,A\r\n", "no_email_column"),
    ("png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "not_csv"),
    ("nul bytes", b"email,name\r\na@example.com,A\x00B\r\n", "not_csv"),
    (
        "unterminated quote",
        b'email,name\r\na@example.com,"Ann\r\nb@example.com,Bob\r\nc@example.com,Cid\r\n',
        "malformed_csv",
    ),
    ("missing columns", b"email,first\r\na@example.com,A\r\n", "missing_columns"),
    ("no valid rows", b"email,name\r\nnope,A\r\nalso-nope,B\r\n", "no_valid_recipients"),
    (
        "too many columns",
        (",".join(["email", "name"] + [f"c{i}" for i in range(1000)]) + "\r\n").encode()
        + b"a@example.com,A\r\n",
        "too_many_columns",
    ),
    (
        "field too large",
        b"email,name\r\na@example.com," + b"x" * (64 * 1024 + 1) + b"\r\n",
        "field_too_large",
    ),
]


@pytest.mark.parametrize(("content", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_file_fails_the_campaign_with_its_code(
    server_factory: ServerFactory, content: bytes, code: str
) -> None:
    rt, api = server_factory.start()
    template_id = api.upload_template(GOOD_TEMPLATE, "Hi")
    file_id = api.upload_file(content)
    campaign_id = api.create_campaign(template_id=template_id, file_id=file_id).json()[
        "transaction_id"
    ]
    status = api.wait(campaign_id)
    assert status["status"] == "failed", status
    assert status["error"]["code"] == code, status["error"]
    assert status["error"]["message"]
    assert status["counts"]["total"] == 0
    assert outbox_count(rt) == 0


def test_unterminated_quote_names_the_line(server_factory: ServerFactory) -> None:
    _rt, api = server_factory.start()
    content = b'email,name\r\na@example.com,A\r\nb@example.com,"Bob\r\nc@example.com,C\r\n'
    status = run(api, content)
    assert status["error"]["code"] == "malformed_csv"
    assert "line 3" in status["error"]["message"]


def test_missing_columns_are_named(server_factory: ServerFactory) -> None:
    _rt, api = server_factory.start()
    template_id = api.upload_template("<p>{{ name }} {{ city }} {{ email }}</p>", "{{ plan }}")
    file_id = api.upload_file(b"email,name\r\na@example.com,A\r\n")
    campaign_id = api.create_campaign(template_id=template_id, file_id=file_id).json()[
        "transaction_id"
    ]
    status = api.wait(campaign_id)
    assert status["error"]["code"] == "missing_columns"
    assert "city" in status["error"]["message"] and "plan" in status["error"]["message"]
    assert "name" not in status["error"]["message"].split(":")[1].replace("columns", "")


def test_file_larger_than_the_limit_is_refused(server_factory: ServerFactory) -> None:
    _rt, api = server_factory.start(file_max_bytes=64)
    ticket = api.http.post(
        "/api/v1/files/presigned-url", json={"filename": "big.csv", "content_type": "text/csv"}
    ).json()
    response = httpx.put(
        ticket["upload_url"],
        content=b"email\r\n" + b"a@example.com\r\n" * 10,
        headers=ticket["headers"],
    )
    assert response.status_code == 413


def run(api: ApiClient, content: bytes, **campaign: object) -> dict[str, object]:
    template_id = api.upload_template(GOOD_TEMPLATE, "Hi")
    file_id = api.upload_file(content)
    response = api.create_campaign(template_id=template_id, file_id=file_id, **campaign)
    assert response.status_code == 202, response.text
    return api.wait(response.json()["transaction_id"])


def test_windows_1252_file_is_read_with_a_warning(server_factory: ServerFactory) -> None:
    rt, api = server_factory.start()
    content = "email;name\r\njose@example.com;José\r\n".encode("cp1252")
    status = run(api, content)
    assert status["status"] == "completed"
    assert any("1252" in w for w in status["file"]["warnings"])  # type: ignore[union-attr]
    assert outbox_count(rt) == 1
    (message,) = iter_outbox(rt)
    assert "José" in message


def test_utf16_and_explicit_delimiter_and_email_column(server_factory: ServerFactory) -> None:
    rt, api = server_factory.start()
    text = "Name|Work E-Mail|Other\r\nZoë|zoe@example.com|x\r\nMax|max@example.com|y\r\n"
    content = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    status = run(api, content, csv_delimiter="|", email_column="Work E-Mail")
    assert status["status"] == "completed", status
    assert status["counts"]["sent"] == 2  # type: ignore[index]
    assert any("Zoë" in m for m in iter_outbox(rt))


def test_quoted_newlines_and_a_large_batch_of_duplicates(server_factory: ServerFactory) -> None:
    rt, api = server_factory.start(ingest_batch_rows=3)
    rows = [["email", "name"]]
    rows += [[f"user{i % 4}@Example.com", f"line one\nline {i}"] for i in range(10)]
    status = run(api, csv_bytes(rows))
    assert status["file"] == {**status["file"], "valid": 4, "duplicates": 6}  # type: ignore[dict-item]
    assert outbox_count(rt) == 4


def iter_outbox(rt: object) -> list[str]:
    from email import message_from_bytes, policy

    from tests.support.outbox import outbox_dir

    texts = []
    for path in outbox_dir(rt).glob("*.eml"):  # type: ignore[arg-type]
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        texts.append(msg.get_body(("html",)).get_content())  # type: ignore[union-attr]
    return texts
