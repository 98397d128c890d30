"""Values that end up in headers can never add a header or a recipient: checked on the raw
bytes a real SMTP relay received."""

from __future__ import annotations

import re

import httpx
import pytest

from postroom.config import load_settings
from postroom.errors import ConfigError
from postroom.runtime import Runtime
from tests.integration.conftest import ServerFactory, new_client
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer
from tests.support.smtp_relay import Received, SmtpRelay

ATTACKS = [
    "=?UTF-8?Q?=0A?=Bcc: x@evil.test",
    "Hi\r\nBcc: x@evil.test",
    "Hi\nBcc: x@evil.test",
    "Hi\rBcc: x@evil.test",
    "=?utf-8?b?DQpCY2M6IHhAZXZpbC50ZXN0?=",
    "Hi =?UTF-8?Q?=0D=0ABcc:_x@evil.test?= there",
    "Hi\u2028Bcc: x@evil.test",
    "Hi\x85Bcc: x@evil.test",
    "Hi\x0bBcc: x@evil.test\x0c",
]
#: The header names the composer writes; anything else in a received head was injected.
EXPECTED_HEADERS = {
    "from",
    "to",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "mime-version",
    "content-type",
}


def assert_clean_head(item: Received) -> None:
    """One recipient, no Bcc/Cc, each header once and on its own line(s), nothing else."""
    assert len(item.recipients) == 1
    assert "evil" not in item.recipients[0]
    head = item.data.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        assert not line.lower().startswith((b"bcc", b"cc", b"x-")), head
        assert b"\n" not in line and b"\r" not in line and b"\0" not in line
        assert line[:1] in (b" ", b"\t") or re.match(rb"[A-Za-z-]+: ", line), head
    names = [n.lower() for n in item.message]
    assert set(names) <= EXPECTED_HEADERS, names
    assert len(names) == len(set(names)), names
    subject = str(item.message["Subject"])
    assert "\n" not in subject and "\r" not in subject
    assert item.message["To"].addresses[0].addr_spec == item.recipients[0]


def test_injection_attempts_in_fields_reach_no_header(
    relay_server: tuple[Runtime, LiveServer], smtp_relay: SmtpRelay
) -> None:
    """A NUL byte in a CSV makes it ``not_csv``, so NUL is tried through the sender name."""
    rt, server = relay_server
    api = new_client(rt, server)
    template_id = api.upload_template("<p>{{ note }}</p>", "{{ note }}")
    rows = [["email", "note"]] + [[f"user{i}@example.com", a] for i, a in enumerate(ATTACKS)]
    file_id = api.upload_file(csv_bytes(rows))
    response = api.create_campaign(
        template_id=template_id,
        file_id=file_id,
        reply_to="reply@example.com",
        **{"from": {"email": "team@example.com", "name": "Team\r\nBcc: x@evil.test\x00"}},
    )
    status = api.wait(response.json()["transaction_id"])
    assert status["counts"]["sent"] == len(ATTACKS), status

    received = smtp_relay.received
    assert len(received) == len(ATTACKS)
    for item in received:
        assert_clean_head(item)
    api.close()


def _send_one(api: ApiClient, subject: str = "Hi", **body: object) -> dict[str, object]:
    template_id = api.upload_template("<p>Hi</p>", subject)
    file_id = api.upload_file(csv_bytes([["email"], ["ann@example.com"]]))
    response = api.create_campaign(template_id=template_id, file_id=file_id, **body)
    assert response.status_code == 202, response.text
    return api.wait(response.json()["transaction_id"])


def test_a_subject_template_with_line_breaks_stays_one_header(
    relay_server: tuple[Runtime, LiveServer], smtp_relay: SmtpRelay
) -> None:
    rt, server = relay_server
    api = new_client(rt, server)
    status = _send_one(api, subject="Hello\r\nBcc: x@evil.test\r\n\r\n<b>body</b>")
    assert status["counts"]["sent"] == 1  # type: ignore[index]
    (item,) = smtp_relay.received
    assert_clean_head(item)
    assert str(item.message["Subject"]) == "Hello Bcc: x@evil.test <b>body</b>"
    api.close()


@pytest.mark.parametrize(
    ("field", "body", "code"),
    [
        ("from email", {"from": {"email": "team@example.com\r\nBcc: x@evil.test"}}, "invalid_from"),
        ("from email", {"from": {"email": "team@example.com\nTo: x@evil.test"}}, "invalid_from"),
        ("reply_to", {"reply_to": "reply@example.com\r\nBcc: x@evil.test"}, "invalid_reply_to"),
        ("reply_to", {"reply_to": "reply@example.com\rCc: x@evil.test"}, "invalid_reply_to"),
    ],
)
def test_addresses_with_line_breaks_are_refused(
    relay_server: tuple[Runtime, LiveServer],
    smtp_relay: SmtpRelay,
    field: str,
    body: dict[str, object],
    code: str,
) -> None:
    rt, server = relay_server
    api = new_client(rt, server)
    template_id = api.upload_template("<p>Hi</p>", "Hi")
    file_id = api.upload_file(csv_bytes([["email"], ["ann@example.com"]]))
    response = api.create_campaign(template_id=template_id, file_id=file_id, **body)
    assert response.status_code == 422, (field, response.text)
    assert response.json()["error"]["code"] == code
    assert smtp_relay.received == []
    api.close()


def test_the_campaign_name_and_metadata_reach_no_header(
    relay_server: tuple[Runtime, LiveServer], smtp_relay: SmtpRelay
) -> None:
    rt, server = relay_server
    api = new_client(rt, server)
    status = _send_one(
        api,
        name="Spring\r\nBcc: x@evil.test",
        metadata={"X-Evil\r\nBcc": "x@evil.test\r\nCc: x@evil.test", "note": "\nBcc: y@evil.test"},
    )
    assert status["counts"]["sent"] == 1  # type: ignore[index]
    (item,) = smtp_relay.received
    assert_clean_head(item)
    assert b"evil" not in item.data
    api.close()


def test_recipient_addresses_with_line_breaks_are_refused_rows(
    relay_server: tuple[Runtime, LiveServer], smtp_relay: SmtpRelay
) -> None:
    rt, server = relay_server
    api = new_client(rt, server)
    rows = [
        ["email"],
        ["ann@example.com\r\nBcc: x@evil.test"],
        ["bob@example.com\nCc: x@evil.test"],
        ["cy@example.com"],
    ]
    template_id = api.upload_template("<p>Hi</p>", "Hi")
    file_id = api.upload_file(csv_bytes(rows))
    response = api.create_campaign(template_id=template_id, file_id=file_id)
    status = api.wait(response.json()["transaction_id"])
    assert status["counts"]["sent"] == 1
    assert status["file"]["invalid"] == 2
    (item,) = smtp_relay.received
    assert item.recipients == ["cy@example.com"]
    assert_clean_head(item)
    api.close()


def test_the_console_sender_field_reaches_no_header(
    relay_server: tuple[Runtime, LiveServer], smtp_relay: SmtpRelay
) -> None:
    rt, server = relay_server
    api = new_client(rt, server)
    key = api.http.headers["Authorization"].removeprefix("Bearer ")
    console = httpx.Client(base_url=server.url, timeout=30)
    assert console.post("/signin", data={"api_key": key}).status_code == 303
    form_page = console.get("/campaigns/new").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form_page)
    assert csrf is not None
    created = console.post(
        "/campaigns/new",
        data={
            "csrf": csrf.group(1),
            "name": "Console\r\nBcc: x@evil.test",
            "sender": '"Team\r\nBcc: x@evil.test" <team@example.com>',
            "subject": "Hi\r\nBcc: x@evil.test",
        },
        files={
            "template": ("t.html", b"<p>Hi</p>", "text/html"),
            "recipients": ("list.csv", csv_bytes([["email"], ["ann@example.com"]]), "text/csv"),
        },
    )
    assert created.status_code == 303, created.text
    campaign_id = created.headers["location"].rsplit("/", 1)[1]
    api.wait(campaign_id, until=("held",))
    assert api.http.post(f"/api/v1/campaigns/{campaign_id}/confirm", json={}).status_code == 200
    assert api.wait(campaign_id)["counts"]["sent"] == 1
    (item,) = smtp_relay.received
    assert_clean_head(item)
    (sender,) = item.message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Team Bcc: x@evil.test", "team@example.com")
    console.close()
    api.close()


def test_a_hostile_default_sender_reaches_no_header(
    server_factory: ServerFactory, smtp_relay: SmtpRelay
) -> None:
    """POSTROOM_DEFAULT_FROM is configuration, but its name is still encoded, not trusted."""
    _rt, api = server_factory.start(
        transport_url=smtp_relay.url,
        # An encoded word that decodes to a line break and a Bcc line.
        default_from="Team =?UTF-8?Q?=0D=0ABcc=3A_x=40evil.test?= <team@example.com>",
    )
    status = _send_one(api)
    assert status["counts"]["sent"] == 1  # type: ignore[index]
    (item,) = smtp_relay.received
    assert_clean_head(item)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("base_url", "http://127.0.0.1:8025/\r\nBcc: x@evil.test"),
        ("base_url", "http://127.0.0.1:8025/x y"),
        ("default_from", "Team <team@example.com>\r\nBcc: x@evil.test"),
        # parseaddr would make "_x@evil.test?=" the sender of every campaign out of this.
        ("default_from", "Team =?UTF-8?Q?=0D=0ABcc:_x@evil.test?= <team@example.com>"),
    ],
)
def test_settings_that_reach_headers_refuse_line_breaks(variable: str, value: str) -> None:
    """The base URL makes every List-Unsubscribe header; the default sender every From."""
    with pytest.raises(ConfigError) as refused:
        load_settings(**{variable: value})
    assert refused.value.variable == f"POSTROOM_{variable.upper()}"
