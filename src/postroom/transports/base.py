"""The transport interface: an envelope goes in, an Accepted, Transient or Permanent comes out."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn, Protocol
from urllib.parse import parse_qsl

from postroom.errors import ConfigError

# Every transport URL problem is reported against this setting, so start-up names it.
TRANSPORT_URL_VARIABLE = "POSTROOM_TRANSPORT_URL"


def reject_transport_url(problem: str) -> NoReturn:
    """Stop start-up with one line naming POSTROOM_TRANSPORT_URL and what is wrong with it."""
    raise ConfigError(TRANSPORT_URL_VARIABLE, problem)


def transport_url_options(query: str, known: Sequence[str], transport: str) -> dict[str, str]:
    """A transport URL's ``?name=value`` options; an unknown name stops start-up."""
    values = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(values) - set(known))
    if unknown:
        reject_transport_url(
            f"unknown {transport} option {unknown[0]!r}; known: {', '.join(known)}"
        )
    return values


_BARE_LINE_ENDING = re.compile(rb"\r\n|\n|\r")


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message for one recipient: the SMTP envelope plus the message exactly as composed.

    ``sender`` is the bare return-path address ("" for the null sender); ``data`` is the
    whole RFC 5322 message. ``needs_smtputf8`` asks for SMTPUTF8 (non-ASCII addresses or
    headers); a non-ASCII envelope address sets it implicitly.
    """

    sender: str
    recipient: str
    data: bytes
    message_id: str
    needs_smtputf8: bool = False


@dataclass(frozen=True, slots=True)
class Accepted:
    """The relay took responsibility for the message; ``reply`` is its full final reply."""

    reply: str
    queue_id: str | None = None


@dataclass(frozen=True, slots=True)
class Transient:
    """Try again later (4xx, connection trouble, timeouts).

    ``transport_level`` is True when the relay as a whole is the problem (cannot connect,
    TLS or authentication failure, 421), so callers can pause everything rather than
    blame this recipient.
    """

    reason: str
    code: int | None = None
    transport_level: bool = False
    #: The provider dropped the message because we sent too fast (SES throttling, SMTP
    #: "454 Throttling failure"): retry it, and slow down.
    throttled: bool = False
    #: The connection was lost after the message data went out and before the relay's
    #: reply: the relay may have it, so a retry may deliver it twice.
    possible_duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Permanent:
    """The relay refused this message for good (5xx on MAIL, RCPT or DATA): never retry."""

    reason: str
    code: int | None = None


Outcome = Accepted | Transient | Permanent


class Transport(Protocol):
    """Delivers envelopes. Delivery problems come back as outcomes, never as exceptions."""

    name: str

    async def send(self, envelope: Envelope) -> Outcome:
        """Make exactly one delivery attempt; never retries, so nothing is sent twice."""
        ...

    async def send_many(self, envelopes: Sequence[Envelope]) -> list[Outcome]:
        """Send concurrently (bounded by the transport's pool); outcomes in input order."""
        ...

    async def close(self) -> None:
        """Let in-flight sends finish, then release connections. Later sends are Transient."""
        ...

    async def max_send_rate(self) -> float | None:
        """The most messages per second the provider accepts from this account (SES's
        sending quota), or None when it sets no such limit or the limit cannot be read."""
        ...


def to_wire_format(data: bytes) -> bytes:
    """Return ``data`` as an SMTP relay receives it: CRLF line endings and a final CRLF.

    SMTP forbids bare CR or LF, so this is what every transport stores or sends; a message
    composed with CRLF already is returned unchanged.
    """
    crlf = data.count(b"\r\n")
    if crlf == data.count(b"\n") == data.count(b"\r") and data.endswith(b"\r\n"):
        return data  # already clean (our composer's output): three C scans beat a rewrite
    wire = _BARE_LINE_ENDING.sub(b"\r\n", data)
    return wire if wire.endswith(b"\r\n") else wire + b"\r\n"


async def send_each(
    send: Callable[[Envelope], Awaitable[Outcome]], envelopes: Sequence[Envelope]
) -> list[Outcome]:
    """Run ``send`` for every envelope concurrently and return the outcomes in input order.

    Sends report delivery problems as outcomes; anything raised is a bug. It is re-raised
    only after every other send has finished, so no transaction is abandoned half-way.
    """
    sends = (send(envelope) for envelope in envelopes)
    results = await asyncio.gather(*sends, return_exceptions=True)
    outcomes: list[Outcome] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        outcomes.append(result)
    return outcomes
