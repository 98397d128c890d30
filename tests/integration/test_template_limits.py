"""A message whose data take its template over a render limit fails alone, through the real
worker: the messages around it in the same batch are rendered and sent as usual."""

from __future__ import annotations

from email import message_from_bytes
from email.message import Message

from tests.integration.conftest import ServerFactory
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.outbox import outbox_dir

TEMPLATE = (
    "<p>Hi {{ name }}</p>"
    "<ul>{% for i in range(count|int) %}<li>{{ word }} {{ loop.index }}</li>{% endfor %}</ul>"
)


def test_a_message_over_a_render_limit_fails_and_the_rest_of_the_batch_is_sent(
    server_factory: ServerFactory,
) -> None:
    # The time limit is lifted so that a slow shared machine cannot trip it before the
    # size and iteration limits this test is about.
    rt, api = server_factory.start(
        render_max_bytes=100_000,
        render_max_iterations=10_000,
        render_timeout_seconds=60.0,
        send_batch_size=50,
    )
    template_id = api.upload_template(TEMPLATE, "Hello {{ name }}")
    template = api.http.get(f"/api/v1/templates/{template_id}").json()
    assert template["status"] == "ready", template  # with empty fields it renders fine
    rows = [
        ["email", "name", "count", "word"],
        ["ana@example.com", "Ana", "3", "apple"],
        ["loop@example.com", "Loop", "1000000", "x"],  # range() past the loop steps
        ["bo@example.com", "Bo", "2", "pear"],
        ["big@example.com", "Big", "1000", "y" * 200],  # about 230 KB: past the size
        ["cy@example.com", "Cy", "1", "plum"],
    ]
    file_id = api.upload_file(csv_bytes(rows))
    created = api.create_campaign(template_id=template_id, file_id=file_id)
    assert created.status_code == 202, created.text
    campaign_id = created.json()["transaction_id"]

    status = api.wait(campaign_id)
    assert status["status"] == "completed", status
    assert status["counts"]["sent"] == 3 and status["counts"]["failed"] == 2, status
    by_email = {m["email"]: m for m in api.messages(campaign_id)}
    loop, big = by_email["loop@example.com"], by_email["big@example.com"]
    assert loop["status"] == "failed" and loop["attempts"] == 0
    assert loop["last_error"].startswith("render_limit: iterations: "), loop
    assert big["status"] == "failed" and big["attempts"] == 0
    assert big["last_error"].startswith("render_limit: rendered_size: "), big
    assert "100000 bytes" in big["last_error"]

    sent = {}
    for path in outbox_dir(rt).glob("*.eml"):
        message = message_from_bytes(path.read_bytes())
        sent[str(message["To"])] = message
    assert sorted(sent) == ["ana@example.com", "bo@example.com", "cy@example.com"]
    assert "<li>pear 2</li>" in html_of(sent["bo@example.com"])
    assert "<li>plum 1</li>" in html_of(sent["cy@example.com"])
    assert str(sent["cy@example.com"]["Subject"]) == "Hello Cy"


def html_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no HTML part")
