"""The receiving end of Postroom's webhooks: check a delivery's ``Postroom-Signature`` and
read its event. Use it in the system that receives them, before trusting the body."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from postroom.client.errors import PostroomError

#: How old a signed timestamp may be: a delivery replayed later than this is refused.
DEFAULT_TOLERANCE_SECONDS = 300


class WebhookSignatureInvalid(PostroomError):
    """The body was not signed with this secret, or not recently enough."""


def verify_webhook(
    secret: str,
    body: bytes,
    signature_header: str | None,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> dict[str, Any]:
    """The event (``{"id", "type", "created_at", "data"}``) when ``signature_header`` is a
    valid ``t=<unix>,v1=<hex>`` signature of the raw ``body`` by ``secret`` made within
    ``tolerance_seconds``; raises WebhookSignatureInvalid otherwise. Pass the body exactly
    as received, before any JSON parsing. Deliver at least once means the same event id
    may arrive twice: keep the ids you have handled."""
    if not signature_header:
        raise WebhookSignatureInvalid("no Postroom-Signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in signature_header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise WebhookSignatureInvalid("the Postroom-Signature header is malformed")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise WebhookSignatureInvalid("the signature's timestamp is outside the tolerance")
    signed = str(timestamp).encode("ascii") + b"." + body
    expected = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise WebhookSignatureInvalid("the signature does not match the body")
    event: dict[str, Any] = json.loads(body)
    return event
