"""Values that end up in headers can never add a header or a recipient: checked on the raw
bytes a real SMTP relay received."""

from __future__ import annotations

from postroom.runtime import Runtime
from tests.integration.conftest import new_client
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.live_server import LiveServer
from tests.support.smtp_relay import SmtpRelay

ATTACKS = [
    "=?UTF-8?Q?=0A?=Bcc: x@evil.test",
    "Hi\r\nBcc: x@evil.test",
    "Hi\nBcc: x@evil.test",
    "Hi\rBcc: x@evil.test",
    "=?utf-8?b?DQpCY2M6IHhAZXZpbC50ZXN0?=",
    "Hi =?UTF-8?Q?=0D=0ABcc:_x@evil.test?= there",
]


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
        assert len(item.recipients) == 1
        assert "evil" not in item.recipients[0]
        head = item.data.split(b"\r\n\r\n", 1)[0]
        for line in head.split(b"\r\n"):
            assert not line.lower().startswith(b"bcc"), head
            assert b"\n" not in line and b"\r" not in line and b"\0" not in line
        names = [n.lower() for n in item.message]
        assert "bcc" not in names and "cc" not in names
        assert names.count("to") == 1 and names.count("subject") == 1
        subject = str(item.message["Subject"])
        assert "\n" not in subject and "\r" not in subject
        assert item.message["To"].addresses[0].addr_spec == item.recipients[0]
    api.close()
