"""Turn Amazon SES event records (event publishing or the older notifications) into ProviderEvents.

Pure: no I/O. Both record shapes are read by one set of rules; anything this module cannot read
safely raises UnknownSesRecord, never KeyError or TypeError.

The event_key rule: sha256 (hex) over the JSON list
``[type, provider_message_id, recipient or "", occurred_at as ISO-8601 UTC, discriminator]``,
where the discriminator is the feedbackId for bounces and complaints, the link for clicks,
the contact list for subscriptions, and "" otherwise. Only fields SES puts in the record itself go
in, so the same SES event delivered twice (or through both formats) gets the same key, while each
recipient of one bounce gets its own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One thing that happened to one message for (at most) one recipient."""

    type: str
    provider_message_id: str
    recipient: str | None
    occurred_at: datetime
    event_key: str
    data: dict[str, Any]


class UnknownSesRecord(ValueError):
    """The record is not an SES event this module can read; the message says why."""


def parse_ses_record(record: dict[str, Any]) -> list[ProviderEvent]:
    """One SES record (event publishing, with "eventType", or the older notifications, with
    "notificationType") -> one event per affected recipient.

    Raises UnknownSesRecord for unknown types and malformed records.
    """
    if not isinstance(record, dict):
        raise UnknownSesRecord("record is not a JSON object")
    kind = record.get("eventType", record.get("notificationType"))
    if not isinstance(kind, str):
        raise UnknownSesRecord("no eventType or notificationType")
    reader = _READERS.get(kind)
    if reader is None:
        raise UnknownSesRecord(f"unknown SES event type {kind!r}")
    mail = _section(record, "mail")
    message_id = mail.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise UnknownSesRecord("missing mail.messageId")
    return reader(record, mail, message_id)


def _section(parent: dict[str, Any], name: str, *, required: bool = True) -> dict[str, Any]:
    value = parent.get(name)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise UnknownSesRecord(f"{name} is missing or not an object")
    return value


def _text(section: dict[str, Any], name: str) -> str | None:
    value = section.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise UnknownSesRecord(f"{name} is not a string")
    return value


def _timestamp(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise UnknownSesRecord(f"{name} is missing or not a string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UnknownSesRecord(f"{name} is not an ISO-8601 timestamp") from None
    if parsed.tzinfo is None:
        raise UnknownSesRecord(f"{name} has no time zone")
    return parsed.astimezone(UTC)


def _occurred_at(section: dict[str, Any], mail: dict[str, Any]) -> datetime:
    if section.get("timestamp") is not None:
        return _timestamp(section["timestamp"], "timestamp")
    return _timestamp(mail.get("timestamp"), "mail.timestamp")


def _addresses(values: Any, name: str) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise UnknownSesRecord(f"{name} is not a list of addresses")
    return list(values)


def _recipient_entries(section: dict[str, Any], name: str) -> list[dict[str, Any]]:
    entries = section.get(name)
    if not isinstance(entries, list) or not entries:
        raise UnknownSesRecord(f"{name} is missing or empty")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("emailAddress"), str):
            raise UnknownSesRecord(f"{name} has an entry without an emailAddress")
    return entries


def _event_key(
    type_: str, message_id: str, recipient: str | None, occurred_at: datetime, discriminator: str
) -> str:
    parts = [type_, message_id, recipient or "", occurred_at.isoformat(), discriminator]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _event(
    type_: str,
    message_id: str,
    recipient: str | None,
    occurred_at: datetime,
    data: dict[str, Any],
    discriminator: str = "",
) -> ProviderEvent:
    key = _event_key(type_, message_id, recipient, occurred_at, discriminator)
    return ProviderEvent(type_, message_id, recipient, occurred_at, key, data)


def _per_destination(
    type_: str,
    mail: dict[str, Any],
    message_id: str,
    occurred_at: datetime,
    data: dict[str, Any],
    discriminator: str = "",
) -> list[ProviderEvent]:
    recipients = _addresses(mail.get("destination", []), "mail.destination")
    if not recipients:
        return [_event(type_, message_id, None, occurred_at, data, discriminator)]
    return [
        _event(type_, message_id, r, occurred_at, dict(data), discriminator) for r in recipients
    ]


def _read_send(
    record: dict[str, Any], mail: dict[str, Any], message_id: str
) -> list[ProviderEvent]:
    send = _section(record, "send", required=False)
    return _per_destination("sent", mail, message_id, _occurred_at(send, mail), {})


def _read_delivery(
    record: dict[str, Any], mail: dict[str, Any], message_id: str
) -> list[ProviderEvent]:
    delivery = _section(record, "delivery")
    occurred_at = _occurred_at(delivery, mail)
    recipients = _addresses(
        delivery.get("recipients", mail.get("destination")), "delivery.recipients"
    )
    processing_time_ms = delivery.get("processingTimeMillis")
    if processing_time_ms is not None and type(processing_time_ms) is not int:
        raise UnknownSesRecord("processingTimeMillis is not an integer")
    data = {
        "smtp_response": _text(delivery, "smtpResponse"),
        "processing_time_ms": processing_time_ms,
        "reporting_mta": _text(delivery, "reportingMTA"),
    }
    return [_event("delivered", message_id, r, occurred_at, dict(data)) for r in recipients]


def _read_delivery_delay(
    record: dict[str, Any], mail: dict[str, Any], message_id: str
) -> list[ProviderEvent]:
    delay = _section(record, "deliveryDelay")
    occurred_at = _occurred_at(delay, mail)
    events = []
    for entry in _recipient_entries(delay, "delayedRecipients"):
        data = {
            "delay_type": _text(delay, "delayType"),
            "expiration_time": _text(delay, "expirationTime"),
            "status": _text(entry, "status"),
            "diagnostic_code": _text(entry, "diagnosticCode"),
        }
        events.append(_event("deferred", message_id, entry["emailAddress"], occurred_at, data))
    return events


# SES's Undetermined means it could not tell; treating it as hard would suppress addresses
# that may well be fine, so only Permanent counts as hard.
_BOUNCE_TYPES = {"Permanent": "hard", "Transient": "soft", "Undetermined": "soft"}


def _read_bounce(
    record: dict[str, Any], mail: dict[str, Any], message_id: str
) -> list[ProviderEvent]:
    bounce = _section(record, "bounce")
    occurred_at = _occurred_at(bounce, mail)
    ses_bounce_type = _text(bounce, "bounceType")
    if ses_bounce_type not in _BOUNCE_TYPES:
        raise UnknownSesRecord(f"unknown bounceType {ses_bounce_type!r}")
    feedback_id = _text(bounce, "feedbackId")
    events = []
    for entry in _recipient_entries(bounce, "bouncedRecipients"):
        data = {
            "bounce_type": _BOUNCE_TYPES[ses_bounce_type],
            "bounce_subtype": _text(bounce, "bounceSubType"),
            "ses_bounce_type": ses_bounce_type,
            "status": _text(entry, "status"),
            "action": _text(entry, "action"),
            "diagnostic_code": _text(entry, "diagnosticCode"),
            "feedback_id": feedback_id,
            "reporting_mta": _text(bounce, "reportingMTA"),
        }
        recipient = entry["emailAddress"]
        events.append(
            _event("bounced", message_id, recipient, occurred_at, data, feedback_id or "")
        )
    return events


def _read_complaint(
    record: dict[str, Any], mail: dict[str, Any], message_id: str
) -> list[ProviderEvent]:
    complaint = _section(record, "complaint")
    occurred_at = _occurred_at(complaint, mail)
    feedback_id = _text(complaint, "feedbackId")
    data = {
        "feedback_type": _text(complaint, "complaintFeedbackType"),
        "user_agent": _text(complaint, "userAgent"),
        "feedback_id": feedback_id,
        "complaint_subtype": _text(complaint, "complaintSubType"),
    }
    return [
        _event(
            "complained",
            message_id,
            entry["emailAddress"],
            occurred_at,
            dict(data),
            feedback_id or "",
        )
        for entry in _recipient_entries(complaint, "complainedRecipients")
    ]


def _read_reject(
    record: dict[str, Any], mail: dict[str, Any], message_id: str
) -> list[ProviderEvent]:
    reject = _section(record, "reject")
    data = {"reason": _text(reject, "reason")}
    return _per_destination("rejected", mail, message_id, _occurred_at(reject, mail), data)


def _read_rendering_failure(
    record: dict[str, Any], mail: dict[str, Any], message_id: str
) -> list[ProviderEvent]:
    failure = _section(record, "failure")
    data = {
        "error_message": _text(failure, "errorMessage"),
        "template_name": _text(failure, "templateName"),
    }
    return _per_destination("failed", mail, message_id, _occurred_at(failure, mail), data)


def _read_open(
    record: dict[str, Any], mail: dict[str, Any], message_id: str
) -> list[ProviderEvent]:
    opened = _section(record, "open")
    data = {"ip_address": _text(opened, "ipAddress"), "user_agent": _text(opened, "userAgent")}
    return _per_destination("opened", mail, message_id, _occurred_at(opened, mail), data)


def _read_click(
    record: dict[str, Any], mail: dict[str, Any], message_id: str
) -> list[ProviderEvent]:
    click = _section(record, "click")
    link = _text(click, "link")
    data = {
        "link": link,
        "link_tags": _section(click, "linkTags", required=False),
        "ip_address": _text(click, "ipAddress"),
        "user_agent": _text(click, "userAgent"),
    }
    occurred_at = _occurred_at(click, mail)
    return _per_destination("clicked", mail, message_id, occurred_at, data, link or "")


def _opted_out_topics(preferences: dict[str, Any], name: str) -> set[str]:
    statuses = preferences.get("topicSubscriptionStatus", [])
    if not isinstance(statuses, list):
        raise UnknownSesRecord(f"{name}.topicSubscriptionStatus is not a list")
    topics = set()
    for status in statuses:
        if not isinstance(status, dict):
            raise UnknownSesRecord(f"{name}.topicSubscriptionStatus has a non-object entry")
        topic = _text(status, "topicName")
        if topic is not None and _text(status, "subscriptionStatus") == "OptOut":
            topics.add(topic)
    return topics


def _read_subscription(
    record: dict[str, Any], mail: dict[str, Any], message_id: str
) -> list[ProviderEvent]:
    subscription = _section(record, "subscription")
    new = _section(subscription, "newTopicPreferences", required=False)
    old = _section(subscription, "oldTopicPreferences", required=False)
    unsubscribe_all = new.get("unsubscribeAll") is True
    newly_opted_out = sorted(
        _opted_out_topics(new, "newTopicPreferences")
        - _opted_out_topics(old, "oldTopicPreferences")
    )
    # An unsubscribe is "unsubscribe from everything" or a topic that has just been opted out
    # of; anything else (opting in, a change that leaves the same opt-outs) is no event.
    if not unsubscribe_all and not newly_opted_out:
        return []
    contact_list = _text(subscription, "contactList")
    data = {
        "contact_list": contact_list,
        "unsubscribe_all": unsubscribe_all,
        "topics_opted_out": newly_opted_out,
        "source": _text(subscription, "source"),
    }
    occurred_at = _occurred_at(subscription, mail)
    return _per_destination("unsubscribed", mail, message_id, occurred_at, data, contact_list or "")


_Reader = Callable[[dict[str, Any], dict[str, Any], str], list[ProviderEvent]]

_READERS: dict[str, _Reader] = {
    "Send": _read_send,
    "Delivery": _read_delivery,
    "DeliveryDelay": _read_delivery_delay,
    "Bounce": _read_bounce,
    "Complaint": _read_complaint,
    "Reject": _read_reject,
    "Rendering Failure": _read_rendering_failure,
    "RenderingFailure": _read_rendering_failure,
    "Open": _read_open,
    "Click": _read_click,
    "Subscription": _read_subscription,
}
