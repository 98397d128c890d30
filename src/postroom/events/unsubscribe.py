"""One-click unsubscribe (RFC 8058): each message carries its own signed link; following it
(a POST from the mailbox provider, or the button on the confirmation page) records an
``unsubscribed`` event and puts the address on the tenant's suppression list, once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from postroom.events import store
from postroom.events.service import record_message_event
from postroom.signing import sign, verify

_PURPOSE = "unsubscribe"


def unsubscribe_token(key: bytes, message_pk: int) -> str:
    """``<message id>.<signature>``: names the message, and cannot be made for another one."""
    return f"{message_pk}.{sign(key, _PURPOSE, str(message_pk))}"


def unsubscribe_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/u/{token}"


def message_of_token(key: bytes, token: str) -> int | None:
    """The message a token names, or None for anything forged, altered or malformed."""
    pk, dot, signature = token.partition(".")
    if not dot or not (pk.isascii() and pk.isdigit()) or len(pk) > 18:
        return None
    return int(pk) if verify(key, signature, _PURPOSE, pk) else None


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    email: str
    is_new: bool


def unsubscribe(conn: Connection, message_pk: int, now: datetime, how: str) -> Unsubscribed | None:
    """Record the unsubscribe of a message's recipient; None if the message is gone."""
    message = store.message_by_id(conn, message_pk)
    if message is None:
        return None
    is_new = record_message_event(
        conn,
        message,
        "unsubscribed",
        source="postroom",
        recipient=message.email,
        occurred_at=now,
        now=now,
        event_key=f"unsubscribe:{message.id}",
        data={"how": how},
    )
    return Unsubscribed(message.email, is_new)
