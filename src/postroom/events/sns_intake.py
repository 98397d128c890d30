"""What Postroom does with a POST from Amazon SNS: trust it only once its signature checks
out, confirm a subscription only towards SNS itself, and record the SES events a
notification carries (``open_sns_message`` does the first two for the S3 hook too). A
message that fails any check changes nothing."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from postroom.db.engine import Database
from postroom.errors import BadRequest, Forbidden
from postroom.events.service import Recorded, record_provider_events
from postroom.events.ses_records import UnknownSesRecord, parse_ses_record
from postroom.events.sns import SnsRejected, SnsVerifier, confirmation_url_is_safe

log = logging.getLogger(__name__)

MESSAGE_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")


@dataclass(frozen=True, slots=True)
class SnsOutcome:
    message_type: str
    recorded: Recorded | None = None
    confirmed: bool = False


def receive_sns_message(
    db: Database,
    body: bytes,
    *,
    verifier: SnsVerifier | None,
    fetch: Callable[[str], bytes],
    now: datetime,
) -> SnsOutcome:
    """``verifier`` None means signatures are not checked (local development only)."""
    envelope = open_sns_message(body, verifier=verifier, fetch=fetch)
    if envelope.message is None:
        return SnsOutcome(envelope.message_type, confirmed=envelope.confirmed)
    try:
        reported = parse_ses_record(_json_object(envelope.message.encode(), "the SES record"))
    except UnknownSesRecord as exc:
        raise BadRequest(
            f"Not an SES record Postroom understands: {exc}", code="unknown_ses_record"
        ) from None
    with db.write() as conn:
        recorded = record_provider_events(conn, reported, source="ses", now=now)
    return SnsOutcome(envelope.message_type, recorded=recorded)


@dataclass(frozen=True, slots=True)
class SnsEnvelope:
    """A trusted SNS message: its type, and the message a Notification carries (None for
    the others, which ``open_sns_message`` has handled)."""

    message_type: str
    message: str | None = None
    confirmed: bool = False


def open_sns_message(
    body: bytes, *, verifier: SnsVerifier | None, fetch: Callable[[str], bytes]
) -> SnsEnvelope:
    """Check an SNS POST (``verifier`` None: signatures are not checked, local development
    only), confirm a subscription or note an unsubscription; raise BadRequest or Forbidden
    for anything untrustworthy."""
    message = _json_object(body, "the SNS message")
    message_type = message.get("Type")
    if message_type not in MESSAGE_TYPES:
        raise BadRequest(
            f"Not an SNS message type: {message_type!r}.",
            code="unknown_sns_message",
            details={"allowed": list(MESSAGE_TYPES)},
        )
    if verifier is not None:
        try:
            verifier.verify(message)
        except SnsRejected as exc:
            log.warning("SNS message refused: %s", exc)
            raise Forbidden(
                "The SNS message's signature could not be verified.", code="invalid_sns_signature"
            ) from None
    if message_type == "SubscriptionConfirmation":
        return SnsEnvelope(message_type, confirmed=_confirm(message, fetch))
    if message_type == "UnsubscribeConfirmation":
        log.warning("SNS says the topic %s unsubscribed this endpoint", message.get("TopicArn"))
        return SnsEnvelope(message_type)
    inner = message.get("Message")
    if not isinstance(inner, str):
        raise BadRequest("The SNS notification carries no message.", code="unknown_ses_record")
    return SnsEnvelope(message_type, message=inner)


def _confirm(message: dict[str, Any], fetch: Callable[[str], bytes]) -> bool:
    url = message.get("SubscribeURL")
    if not isinstance(url, str) or not confirmation_url_is_safe(url):
        log.warning("SNS subscription not confirmed: SubscribeURL is not an SNS https URL")
        raise Forbidden(
            "The subscription's SubscribeURL is not an https URL on an SNS host.",
            code="invalid_subscribe_url",
        )
    fetch(url)
    log.info("SNS subscription to %s confirmed", message.get("TopicArn"))
    return True


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest(f"{what} is not JSON.", code="invalid_json") from None
    if not isinstance(parsed, dict):
        raise BadRequest(f"{what} is not a JSON object.", code="invalid_json")
    return parsed
