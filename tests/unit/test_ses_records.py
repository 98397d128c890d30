"""parse_ses_record against the SES documentation's example records, and against broken ones."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postroom.db.tables import EVENT_TYPES
from postroom.events.ses_records import (
    ProviderEvent,
    UnknownSesRecord,
    parse_ses_record,
)

# The documentation's examples, copied into the repository (see tests/fixtures/SOURCES.md).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ses"
EXAMPLE_ID = "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"


def load(name: str) -> dict[str, Any]:
    path = FIXTURES / name
    if not path.exists():
        raise AssertionError(f"SES fixture {path} is missing")
    record: dict[str, Any] = json.loads(path.read_text())
    return record


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def only(events: list[ProviderEvent]) -> ProviderEvent:
    assert len(events) == 1
    return events[0]


def test_event_send() -> None:
    event = only(parse_ses_record(load("ses-event-send.json")))
    assert (event.type, event.provider_message_id) == ("sent", EXAMPLE_ID)
    assert event.recipient == "recipient@example.com"
    assert event.occurred_at == at("2016-10-14T05:02:16.645")
    assert event.data == {}


def test_event_delivery() -> None:
    event = only(parse_ses_record(load("ses-event-delivery.json")))
    assert (event.type, event.provider_message_id) == ("delivered", EXAMPLE_ID)
    assert event.recipient == "recipient@example.com"
    assert event.occurred_at == at("2016-10-19T23:21:04.133")
    assert event.data == {
        "smtp_response": "250 2.6.0 Message received",
        "processing_time_ms": 11893,
        "reporting_mta": "mta.example.com",
    }


def test_event_delivery_delay() -> None:
    event = only(parse_ses_record(load("ses-event-delivery-delay.json")))
    assert (event.type, event.provider_message_id) == ("deferred", EXAMPLE_ID)
    assert event.recipient == "recipient@example.com"
    assert event.occurred_at == at("2020-06-16T00:25:40.095")
    assert event.data == {
        "delay_type": "TransientCommunicationFailure",
        "expiration_time": "2020-06-16T00:25:40.914Z",
        "status": "4.4.1",
        "diagnostic_code": "smtp; 421 4.4.1 Unable to connect to remote host",
    }


def test_event_bounce_permanent() -> None:
    event = only(parse_ses_record(load("ses-event-bounce-permanent.json")))
    assert (event.type, event.provider_message_id) == ("bounced", EXAMPLE_ID)
    assert event.recipient == "recipient@example.com"
    assert event.occurred_at == at("2017-08-05T00:41:02.669")
    assert event.data == {
        "bounce_type": "hard",
        "bounce_subtype": "General",
        "ses_bounce_type": "Permanent",
        "status": "5.1.1",
        "action": "failed",
        "diagnostic_code": "smtp; 550 5.1.1 user unknown",
        "feedback_id": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        "reporting_mta": "dsn; mta.example.com",
    }


@pytest.mark.parametrize(
    ("ses_type", "expected"),
    [("Permanent", "hard"), ("Transient", "soft"), ("Undetermined", "soft")],
)
def test_bounce_types(ses_type: str, expected: str) -> None:
    record = load("ses-event-bounce-permanent.json")
    record["bounce"]["bounceType"] = ses_type
    event = only(parse_ses_record(record))
    assert (event.data["bounce_type"], event.data["ses_bounce_type"]) == (expected, ses_type)


def test_event_complaint() -> None:
    event = only(parse_ses_record(load("ses-event-complaint.json")))
    assert (event.type, event.provider_message_id) == ("complained", EXAMPLE_ID)
    assert event.recipient == "recipient@example.com"
    assert event.occurred_at == at("2017-08-05T00:41:02.669")
    assert event.data["feedback_type"] == "abuse"
    assert event.data["feedback_id"] == (
        "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000"
    )
    assert event.data["user_agent"].startswith("Mozilla/5.0 (Windows NT 10.0")
    assert event.data["complaint_subtype"] is None


def test_event_reject() -> None:
    event = only(parse_ses_record(load("ses-event-reject.json")))
    assert (event.type, event.provider_message_id) == ("rejected", EXAMPLE_ID)
    assert event.recipient == "sender@example.com"  # the doc's mail.destination
    assert event.occurred_at == at("2016-10-14T17:38:15.211")  # no own timestamp: mail's
    assert event.data == {"reason": "Bad content"}


def test_event_rendering_failure() -> None:
    event = only(parse_ses_record(load("ses-event-rendering-failure.json")))
    assert (event.type, event.provider_message_id) == ("failed", EXAMPLE_ID)
    assert event.recipient == "recipient@example.com"
    assert event.occurred_at == at("2018-01-22T18:43:06.197")
    assert event.data == {
        "error_message": "Attribute 'attributeName' is not present in the rendering data.",
        "template_name": "MyTemplate",
    }


def test_rendering_failure_without_space_is_the_same_event() -> None:
    record = load("ses-event-rendering-failure.json")
    spaced = only(parse_ses_record(record))
    record["eventType"] = "RenderingFailure"
    assert only(parse_ses_record(record)) == spaced


def test_event_open() -> None:
    event = only(parse_ses_record(load("ses-event-open.json")))
    assert (event.type, event.provider_message_id) == ("opened", EXAMPLE_ID)
    assert event.recipient == "recipient@example.com"
    assert event.occurred_at == at("2017-08-09T22:00:19.652")
    assert event.data["ip_address"] == "192.0.2.1"
    assert event.data["user_agent"].startswith("Mozilla/5.0 (iPhone;")


def test_event_click() -> None:
    event = only(parse_ses_record(load("ses-event-click.json")))
    assert (event.type, event.provider_message_id) == ("clicked", EXAMPLE_ID)
    assert event.recipient == "recipient@example.com"
    assert event.occurred_at == at("2017-08-09T23:51:25.570")
    assert event.data["link"] == (
        "http://docs.aws.amazon.com/ses/latest/DeveloperGuide/send-email-smtp.html"
    )
    assert event.data["link_tags"] == {
        "samplekey0": ["samplevalue0"],
        "samplekey1": ["samplevalue1"],
    }
    assert event.data["ip_address"] == "192.0.2.1"
    json.dumps(event.data)


def test_event_subscription() -> None:
    event = only(parse_ses_record(load("ses-event-subscription.json")))
    assert event.type == "unsubscribed"
    assert event.provider_message_id == (
        "EXAMPLEe4bccb684-777bc8de-afa7-4970-92b0-f515137b1497-000000"
    )
    assert event.recipient == "recipient@example.com"
    assert event.occurred_at == at("2022-01-12T01:00:17.910")
    assert event.data == {
        "contact_list": "ContactListName",
        "unsubscribe_all": True,
        "topics_opted_out": [],  # ExampleTopicName was already opted out
        "source": "UnsubscribeHeader",
    }


def test_subscription_topic_opt_out_is_an_unsubscribe() -> None:
    record = load("ses-event-subscription.json")
    record["subscription"]["newTopicPreferences"]["unsubscribeAll"] = False
    record["subscription"]["oldTopicPreferences"]["topicSubscriptionStatus"][0][
        "subscriptionStatus"
    ] = "OptIn"
    event = only(parse_ses_record(record))
    assert event.data["topics_opted_out"] == ["ExampleTopicName"]
    assert event.data["unsubscribe_all"] is False


def test_subscription_opt_in_is_no_event() -> None:
    record = load("ses-event-subscription.json")
    record["subscription"]["newTopicPreferences"] = {
        "unsubscribeAll": False,
        "topicSubscriptionStatus": [
            {"topicName": "ExampleTopicName", "subscriptionStatus": "OptIn"}
        ],
    }
    assert parse_ses_record(record) == []


def test_notification_bounce_with_dsn() -> None:
    event = only(parse_ses_record(load("ses-notification-bounce-permanent-with-dsn.json")))
    assert event.type == "bounced"
    assert event.provider_message_id == (
        "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000"
    )
    assert event.recipient == "jane@example.com"
    assert event.occurred_at == at("2016-01-27T14:59:38.237")
    assert event.data["bounce_type"] == "hard"
    assert event.data["status"] == "5.1.1"
    assert event.data["action"] == "failed"
    assert event.data["diagnostic_code"] == "smtp; 550 5.1.1 <jane@example.com>... User"
    assert event.data["reporting_mta"] == "dns; email.example.com"


def test_notification_bounce_without_dsn() -> None:
    events = parse_ses_record(load("ses-notification-bounce-permanent-without-dsn.json"))
    assert [e.recipient for e in events] == ["jane@example.com", "richard@example.com"]
    for event in events:
        assert event.type == "bounced"
        assert event.provider_message_id == (
            "00000137860315fd-34208509-5b74-41f3-95c5-22c1edc3c924-000000"
        )
        assert event.occurred_at == at("2016-01-27T14:59:38.237")
        assert event.data["bounce_type"] == "hard"
        assert event.data["status"] is None
        assert event.data["feedback_id"] == (
            "00000137860315fd-869464a4-8680-4114-98d3-716fe35851f9-000000"
        )
    # two recipients of one bounce are two events
    assert events[0].event_key != events[1].event_key


def test_notification_complaint_with_feedback_report() -> None:
    event = only(parse_ses_record(load("ses-notification-complaint-with-feedback-report.json")))
    assert event.type == "complained"
    assert event.provider_message_id == (
        "000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000"
    )
    assert event.recipient == "richard@example.com"
    assert event.occurred_at == at("2016-01-27T14:59:38.237")
    assert event.data["feedback_type"] == "abuse"
    assert event.data["user_agent"] == "AnyCompany Feedback Loop (V0.01)"


def test_notification_complaint_without_feedback_report() -> None:
    event = only(parse_ses_record(load("ses-notification-complaint-without-feedback-report.json")))
    assert event.type == "complained"
    assert event.provider_message_id == (
        "0000013786031775-163e3910-53eb-4c8e-a04a-f29debf88a84-000000"
    )
    assert event.recipient == "richard@example.com"
    assert event.data["feedback_type"] is None
    assert event.data["user_agent"] is None
    assert event.data["feedback_id"] == (
        "0000013786031775-fea503bc-7497-49e1-881b-a0379bb037d3-000000"
    )


def test_notification_delivery() -> None:
    event = only(parse_ses_record(load("ses-notification-delivery.json")))
    assert event.type == "delivered"
    assert event.provider_message_id == (
        "0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000"
    )
    assert event.recipient == "jane@example.com"
    assert event.occurred_at == at("2016-01-27T14:59:38.237")
    assert event.data == {
        "smtp_response": "250 ok:  Message 64111812 accepted",
        "processing_time_ms": 546,
        "reporting_mta": "a8-70.smtp-out.amazonses.com",
    }


def test_sns_notification_message_holding_an_ses_record() -> None:
    envelope = load("sns-http-notification.json")
    assert envelope["Message"] == "Hello world!"  # the doc's example is not an SES record
    with pytest.raises(json.JSONDecodeError):
        json.loads(envelope["Message"])
    record = load("ses-event-bounce-permanent.json")
    envelope["Message"] = json.dumps(record)
    from_sns = parse_ses_record(json.loads(envelope["Message"]))
    assert from_sns == parse_ses_record(record)


SES_FIXTURES = sorted(p.name for p in FIXTURES.glob("ses-*.json"))


@pytest.mark.parametrize("name", SES_FIXTURES)
def test_every_fixture_parses_to_known_types_and_stable_keys(name: str) -> None:
    record = load(name)
    first = parse_ses_record(record)
    again = parse_ses_record(json.loads(json.dumps(record)))
    assert first
    assert [e.event_key for e in first] == [e.event_key for e in again]
    for event in first:
        assert event.type in EVENT_TYPES
        assert event.occurred_at.tzinfo is not None
        assert event.occurred_at.utcoffset() is not None
        json.dumps(event.data)


def test_different_events_have_different_keys() -> None:
    keys = [e.event_key for name in SES_FIXTURES for e in parse_ses_record(load(name))]
    assert len(keys) == len(set(keys))


def test_the_same_bounce_in_both_formats_has_one_key() -> None:
    published = load("ses-event-bounce-permanent.json")
    notified = copy.deepcopy(published)
    del notified["eventType"]
    notified["notificationType"] = "Bounce"
    assert parse_ses_record(published)[0].event_key == parse_ses_record(notified)[0].event_key


def broken(name: str, change: Any) -> dict[str, Any]:
    record = load(name)
    change(record)
    return record


BROKEN_CHANGES: list[tuple[str, str, Any]] = [
    ("no type", "ses-event-send.json", lambda r: r.pop("eventType")),
    ("unknown type", "ses-event-send.json", lambda r: r.update(eventType="Teleport")),
    ("type not a string", "ses-event-send.json", lambda r: r.update(eventType=3)),
    ("no mail", "ses-event-send.json", lambda r: r.pop("mail")),
    ("mail a list", "ses-event-send.json", lambda r: r.update(mail=[])),
    ("no message id", "ses-event-send.json", lambda r: r["mail"].pop("messageId")),
    ("message id a number", "ses-event-send.json", lambda r: r["mail"].update(messageId=7)),
    ("destination a string", "ses-event-open.json", lambda r: r["mail"].update(destination="a")),
    ("bad timestamp", "ses-event-open.json", lambda r: r["open"].update(timestamp="yesterday")),
    ("timestamp a number", "ses-event-open.json", lambda r: r["open"].update(timestamp=1)),
    ("naive timestamp", "ses-event-send.json", lambda r: r["mail"].update(timestamp="2020-01-01")),
    ("no bounce", "ses-event-bounce-permanent.json", lambda r: r.pop("bounce")),
    (
        "unknown bounce type",
        "ses-event-bounce-permanent.json",
        lambda r: r["bounce"].update(bounceType="Soft"),
    ),
    (
        "no bounced recipients",
        "ses-event-bounce-permanent.json",
        lambda r: r["bounce"].update(bouncedRecipients=[]),
    ),
    (
        "bounced recipient without address",
        "ses-event-bounce-permanent.json",
        lambda r: r["bounce"].update(bouncedRecipients=[{"status": "5.1.1"}]),
    ),
    (
        "complained recipients a dict",
        "ses-event-complaint.json",
        lambda r: r["complaint"].update(complainedRecipients={}),
    ),
    (
        "processing time a string",
        "ses-event-delivery.json",
        lambda r: r["delivery"].update(processingTimeMillis="11893"),
    ),
    ("link a list", "ses-event-click.json", lambda r: r["click"].update(link=["x"])),
    (
        "topic statuses a string",
        "ses-event-subscription.json",
        lambda r: r["subscription"]["newTopicPreferences"].update(topicSubscriptionStatus="x"),
    ),
    (
        "notification type unknown",
        "ses-notification-delivery.json",
        lambda r: r.update(notificationType="Received"),
    ),
]


@pytest.mark.parametrize(
    ("name", "change"), [c[1:] for c in BROKEN_CHANGES], ids=[c[0] for c in BROKEN_CHANGES]
)
def test_broken_records_raise_unknown_ses_record(name: str, change: Any) -> None:
    with pytest.raises(UnknownSesRecord):
        parse_ses_record(broken(name, change))


def test_a_non_object_record_raises_unknown_ses_record() -> None:
    with pytest.raises(UnknownSesRecord):
        parse_ses_record([])  # type: ignore[arg-type]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_damage_raises_only_unknown_ses_record(data: st.DataObject) -> None:
    record = load(data.draw(st.sampled_from(SES_FIXTURES)))
    path = data.draw(st.sampled_from(paths(record)))
    parent = record
    for step in path[:-1]:
        parent = parent[step]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(JSON_VALUES)
    try:
        events = parse_ses_record(record)
    except UnknownSesRecord:
        return
    for event in events:
        assert event.type in EVENT_TYPES
        json.dumps(event.data)
