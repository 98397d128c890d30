"""Recording mail that arrives at the bounce address (from the SMTP listener or the IMAP
poll): a bounce or complaint about one of our messages becomes its event, mail to a message's
mailto unsubscribe address unsubscribes its recipient, and everything else is kept in the blob
store and counted in ``inbound_mail`` with why it was not recorded."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, func, insert, select

from postroom.db.tables import inbound_mail
from postroom.events import store
from postroom.events.bounce_reports import InboundReport, read_report
from postroom.events.service import record_message_event
from postroom.events.unsubscribe import unsubscribe
from postroom.events.verp import VerpAddress, mac_matches, read_address
from postroom.runtime import Runtime

log = logging.getLogger(__name__)

Outcome = Literal["recorded", "duplicate", "unmatched", "unparseable", "ignored"]
OUTCOMES: tuple[Outcome, ...] = ("recorded", "duplicate", "unmatched", "unparseable", "ignored")
SOURCE = "smtp"


@dataclass(frozen=True, slots=True)
class InboundResult:
    outcome: Outcome
    detail: str
    message_pk: int | None = None
    blob_key: str | None = None


def receive_inbound_mail(
    rt: Runtime, *, envelope_from: str, envelope_to: list[str], raw: bytes
) -> InboundResult:
    """Keep, record, then let go: the raw mail goes to the blob store first (no transaction
    is held across blob I/O), the outcome is committed, and the copy is deleted again when
    the mail was recorded (an event holds what it said). Raises if nothing could be
    committed; the caller then asks for the mail again later."""
    now = rt.clock.now()
    # Named by content and envelope: a redelivery finds its copy, another mail never shares it.
    digest = hashlib.sha256(raw + "\0".join(["", *envelope_to]).encode()).hexdigest()
    key = f"inbound/{now:%Y-%m-%d}/{digest[:32]}.eml"
    if not rt.blobs.exists(key):  # a redelivery of the same mail finds it kept already
        writer = rt.blobs.writer(key, max_bytes=max(len(raw), 1))
        try:
            writer.write(raw)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    with rt.db.write() as conn:
        result = record_inbound_mail(
            conn,
            secret_key=rt.secret_key,
            bounce_address=rt.settings.bounce_address,
            envelope_from=envelope_from,
            envelope_to=envelope_to,
            raw=raw,
            now=now,
            kept_key=key,
        )
    if result.blob_key is None:
        try:
            rt.blobs.delete(key)
        except OSError as exc:  # a stray copy is harmless; the record is what counts
            log.warning("could not delete the kept copy %s: %s", key, exc)
    return result


def record_inbound_mail(
    conn: Connection,
    *,
    secret_key: bytes,
    bounce_address: str,
    envelope_from: str,
    envelope_to: list[str],
    raw: bytes,
    now: datetime,
    kept_key: str,
) -> InboundResult:
    """Record one inbound mail in the caller's transaction, with its outcome; ``kept_key``
    (where the caller kept the raw mail) is noted for mail that was not recorded."""
    result = _record(conn, secret_key, bounce_address, envelope_to, raw, now)
    if result.outcome not in ("recorded", "duplicate"):
        result = InboundResult(result.outcome, result.detail, result.message_pk, kept_key)
    conn.execute(
        insert(inbound_mail).values(
            received_at=now,
            envelope_from=envelope_from[:320],
            envelope_to=", ".join(envelope_to)[:1000],
            outcome=result.outcome,
            detail=result.detail[:2000],
            blob_key=result.blob_key,
        )
    )
    return result


def inbound_counts(conn: Connection) -> dict[str, int]:
    """How many inbound mails had each outcome (every outcome listed, zeros included)."""
    rows = conn.execute(
        select(inbound_mail.c.outcome, func.count()).group_by(inbound_mail.c.outcome)
    ).all()
    found = {outcome: count for outcome, count in rows}
    return {outcome: int(found.get(outcome, 0)) for outcome in OUTCOMES}


def recent_inbound_mail(conn: Connection, *, outcome: str | None, limit: int) -> list[Any]:
    query = select(inbound_mail).order_by(inbound_mail.c.id.desc()).limit(limit)
    if outcome is not None:
        query = query.where(inbound_mail.c.outcome == outcome)
    return list(conn.execute(query).all())


def _record(
    conn: Connection,
    key: bytes,
    bounce_address: str,
    envelope_to: list[str],
    raw: bytes,
    now: datetime,
) -> InboundResult:
    ours = [a for a in (read_address(bounce_address, rcpt) for rcpt in envelope_to) if a]
    unsubscribes = [a for a in ours if a.kind == "unsubscribe"]
    if unsubscribes:
        return _unsubscribe(conn, key, unsubscribes[0], now)
    report = read_report(raw)
    if report.kind == "unparseable":
        return InboundResult("unparseable", report.detail)
    if report.kind == "auto_reply":
        return InboundResult("ignored", report.detail)
    bounce_to = [a for a in ours if a.kind == "bounce"]
    if bounce_to:  # the envelope names the message: the surest sign, and it alone decides
        message = _verified_message(conn, key, bounce_to[0])
        if message is None:
            return InboundResult("unmatched", "VERP token in the envelope recipient is not valid")
    else:
        message = _message_of_report(conn, key, bounce_address, report)
        if message is None:
            return InboundResult("unmatched", f"{report.detail} names none of our messages")
    return _store_report(conn, message, report, raw, now)


def _unsubscribe(
    conn: Connection, key: bytes, address: VerpAddress, now: datetime
) -> InboundResult:
    message = _verified_message(conn, key, address)
    if message is None:
        return InboundResult("unmatched", "unsubscribe token is not valid")
    done = unsubscribe(conn, message.id, now, how="mailto")
    if done is None:
        return InboundResult("unmatched", "unsubscribe for a message that is gone")
    outcome: Outcome = "recorded" if done.is_new else "duplicate"
    return InboundResult(outcome, "mailto unsubscribe", message.id)


def _verified_message(conn: Connection, key: bytes, address: VerpAddress) -> Any | None:
    if address.message_pk is None:
        return None
    message = store.message_by_id(conn, address.message_pk)
    if message is None or not mac_matches(key, message.tenant_id, message.id, address.mac):
        return None
    return message


def _message_of_report(
    conn: Connection, key: bytes, bounce_address: str, report: InboundReport
) -> Any | None:
    """The message a report names inside itself: a VERP address (checked), else our own
    Message-ID ``<id>.<campaign id>@domain`` whose id and campaign id must both agree."""
    for candidate in report.verp_candidates:
        address = read_address(bounce_address, candidate)
        if address is not None and address.kind == "bounce":
            message = _verified_message(conn, key, address)
            if message is not None:
                return message
    for message_id in report.message_ids:
        pk, dot, rest = message_id.partition(".")
        campaign_id = rest.partition("@")[0]
        if not dot or not (pk.isascii() and pk.isdigit()) or len(pk) > 18 or not campaign_id:
            continue
        message = store.message_by_id(conn, int(pk))
        if message is not None and message.campaign_id == campaign_id:
            return message
    return None


def _store_report(
    conn: Connection, message: Any, report: InboundReport, raw: bytes, now: datetime
) -> InboundResult:
    digest = hashlib.sha256(raw + b"\0" + message.email.lower().encode()).hexdigest()
    if report.kind == "complaint":
        event_type = "complained"
        data: dict[str, Any] = {
            "complaint_type": report.feedback_type,
            "user_agent": report.user_agent,
            "source": SOURCE,
        }
        detail = f"complaint ({report.feedback_type})"
    else:
        bounce = next(
            (b for b in report.bounces if (b.recipient or "").lower() == message.email.lower()),
            report.bounces[0],
        )
        event_type = "bounced"
        data = {
            "bounce_type": bounce.bounce_type,
            "bounce_subtype": bounce.subtype,
            "status": bounce.status,
            "diagnostic_code": bounce.diagnostic_code,
            "action": bounce.action,
            "source": SOURCE,
        }
        detail = f"{bounce.bounce_type} bounce {bounce.status or ''} {bounce.subtype}".strip()
    is_new = record_message_event(
        conn,
        message,
        event_type,
        source=SOURCE,
        recipient=message.email,
        occurred_at=now,
        now=now,
        event_key=f"{SOURCE}-{event_type}:{digest}",
        data=data,
        detail=data.get("diagnostic_code") or detail,
    )
    return InboundResult("recorded" if is_new else "duplicate", detail, message.id)
