"""The SQL of an erasure: each function takes one address out of one kind of row of one
tenant and says how many rows it changed."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, String, cast, delete, func, insert, select, update

from postroom.campaigns import withheld
from postroom.db.tables import (
    analytics_links,
    audit_log,
    campaigns,
    events,
    files,
    inbound_mail,
    message_transitions,
    messages,
    row_issues,
    webhook_deliveries,
)
from postroom.events.verp import read_address
from postroom.files.address_redaction import redact_json, redact_text, redact_url
from postroom.suppressions import store as suppression_store

ERASED_WHY = "its recipient was erased"


def hash_suppression(
    conn: Connection, tenant_id: str, email_key: str, hashed: str, now: datetime
) -> int:
    """Keep the address on the list as ``hashed`` alone (with its first reason, if it was
    there); 1 if that entry is new."""
    plain = suppression_store.find(conn, tenant_id, email_key)
    reason = plain.reason if plain is not None else "erased"
    if plain is not None:
        suppression_store.remove(conn, tenant_id, [email_key])
    created = suppression_store.add(conn, tenant_id, hashed, None, reason, now)
    return 1 if created or plain is not None else 0


def erase_messages(
    conn: Connection,
    tenant_id: str,
    email_key: str,
    hashed: str,
    pattern: re.Pattern[str],
    now: datetime,
) -> tuple[list[int], int]:
    """The tenant's messages to the address keep their row (counts stay right) with the hash
    for address and key and no personalisation; those still waiting are never sent. Returns
    their ids and how many were stopped."""
    rows = conn.execute(
        select(messages.c.id, messages.c.campaign_id, messages.c.last_error, messages.c.relay_reply)
        .join(campaigns, campaigns.c.id == messages.c.campaign_id)
        .where(campaigns.c.tenant_id == tenant_id, messages.c.email_key == email_key)
        .order_by(messages.c.campaign_id)  # campaign rows are locked in id order everywhere
    ).all()
    stopped = 0
    by_campaign: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        by_campaign[row.campaign_id].append(row.id)
    for campaign_id, pks in by_campaign.items():
        stopped += withheld.stop_waiting(conn, campaign_id, messages.c.id.in_(pks), now, ERASED_WHY)
    for row in rows:
        conn.execute(
            update(messages)
            .where(messages.c.id == row.id)
            .values(
                email=hashed,
                email_key=hashed,
                fields="{}",
                last_error=redact_text(row.last_error, pattern),
                relay_reply=redact_text(row.relay_reply, pattern),
            )
        )
    pks = [row.id for row in rows]
    if pks:
        for step in conn.execute(
            select(message_transitions.c.id, message_transitions.c.detail).where(
                message_transitions.c.message_pk.in_(pks),
                message_transitions.c.detail.is_not(None),
            )
        ):
            redacted = redact_text(step.detail, pattern)
            if redacted != step.detail:
                conn.execute(
                    update(message_transitions)
                    .where(message_transitions.c.id == step.id)
                    .values(detail=redacted)
                )
    return pks, stopped


def erase_events(
    conn: Connection,
    tenant_id: str,
    pks: list[int],
    hashed: str,
    spellings: list[str],
    pattern: re.Pattern[str],
) -> list[int]:
    """Events of those messages: the hash for recipient, the address out of their data (and
    out of a clicked link's URL, where it stands as a part of the URL)."""
    if not pks:
        return []
    rows = conn.execute(
        select(events.c.id, events.c.data).where(
            events.c.tenant_id == tenant_id, events.c.message_pk.in_(pks)
        )
    ).all()
    for row in rows:
        conn.execute(
            update(events)
            .where(events.c.id == row.id)
            .values(recipient=hashed, data=_redacted_event_data(row.data, spellings, pattern))
        )
    return [row.id for row in rows]


def _redacted_event_data(data: Any, spellings: list[str], pattern: re.Pattern[str]) -> Any:
    redacted = redact_json(data, pattern)
    if isinstance(redacted, dict) and isinstance(redacted.get("url"), str):
        redacted["url"] = redact_url(redacted["url"], spellings)
    return redacted


def erase_link_urls(
    conn: Connection, tenant_id: str, spellings: list[str], pattern: re.Pattern[str]
) -> int:
    """Clicked links of the tenant's campaigns whose URL carried the address (a personalised
    link): the URL loses it, and a row whose URL becomes one already counted is added to it."""
    rows = conn.execute(
        select(analytics_links)
        .join(campaigns, campaigns.c.id == analytics_links.c.campaign_id)
        .where(
            campaigns.c.tenant_id == tenant_id,
            _mentions(analytics_links.c.url, [*spellings, *(quote(s, safe="") for s in spellings)]),
        )
        .order_by(analytics_links.c.campaign_id, analytics_links.c.url)
    ).all()
    changed = 0
    for row in rows:
        url = redact_text(redact_url(row.url, spellings), pattern)
        if url == row.url:
            continue
        in_campaign = analytics_links.c.campaign_id == row.campaign_id
        conn.execute(delete(analytics_links).where(in_campaign, analytics_links.c.url == row.url))
        merged = conn.execute(
            update(analytics_links)
            .where(in_campaign, analytics_links.c.url == url)
            .values(
                clicks=analytics_links.c.clicks + row.clicks,
                unique_clicks=analytics_links.c.unique_clicks + row.unique_clicks,
            )
        ).rowcount
        if not merged:
            conn.execute(
                insert(analytics_links).values(
                    campaign_id=row.campaign_id,
                    url=url,
                    clicks=row.clicks,
                    unique_clicks=row.unique_clicks,
                )
            )
        changed += 1
    return changed


def drop_webhook_deliveries(
    conn: Connection, tenant_id: str, event_ids: list[int], now: datetime
) -> int:
    """Deliveries of those events not yet made are not made: the receiver would only get a
    redacted event, and it may not learn the address any more."""
    if not event_ids:
        return 0
    return conn.execute(
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.tenant_id == tenant_id,
            webhook_deliveries.c.event_id.in_(event_ids),
            webhook_deliveries.c.status == "pending",
        )
        .values(
            status="failed",
            last_error=ERASED_WHY,
            finished_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )
    ).rowcount


def erase_row_issues(
    conn: Connection, tenant_id: str, spellings: list[str], pattern: re.Pattern[str]
) -> int:
    """Rows of the tenant's file reports (invalid and duplicate rows) that show the address."""
    rows = conn.execute(
        select(
            row_issues.c.campaign_id,
            row_issues.c.row_number,
            row_issues.c.email,
            row_issues.c.detail,
        )
        .join(campaigns, campaigns.c.id == row_issues.c.campaign_id)
        .where(campaigns.c.tenant_id == tenant_id, _mentions(row_issues.c.email, spellings))
    ).all()
    changed = 0
    for row in rows:
        email, detail = redact_text(row.email, pattern), redact_text(row.detail, pattern)
        if (email, detail) == (row.email, row.detail):
            continue  # a longer address that merely contains this one
        conn.execute(
            update(row_issues)
            .where(
                row_issues.c.campaign_id == row.campaign_id,
                row_issues.c.row_number == row.row_number,
            )
            .values(email=email, detail=detail)
        )
        changed += 1
    return changed


def release_bounce_mail(
    conn: Connection,
    pks: list[int],
    bounce_address: str,
    pattern: re.Pattern[str],
) -> list[str]:
    """Kept mail (unparsed bounces, auto-replies) whose envelope names one of those messages:
    its copy's blob key is returned to be deleted, and the row keeps no trace of the address."""
    if not pks or not bounce_address:
        return []
    wanted = set(pks)
    released: list[str] = []
    rows = conn.execute(
        select(
            inbound_mail.c.id,
            inbound_mail.c.envelope_from,
            inbound_mail.c.envelope_to,
            inbound_mail.c.detail,
            inbound_mail.c.blob_key,
        ).where(inbound_mail.c.blob_key.is_not(None))
    ).all()
    for row in rows:
        named = (read_address(bounce_address, to) for to in row.envelope_to.split(","))
        if not any(a is not None and a.message_pk in wanted for a in named):
            continue
        conn.execute(
            update(inbound_mail)
            .where(inbound_mail.c.id == row.id)
            .values(
                envelope_from=redact_text(row.envelope_from, pattern),
                detail=redact_text(row.detail, pattern),
                blob_key=None,
            )
        )
        released.append(row.blob_key)
    return released


def erase_audit_targets(
    conn: Connection, tenant_id: str, spellings: list[str], pattern: re.Pattern[str]
) -> int:
    """Audit entries that named the address (``DELETE /api/v1/suppressions/{email}``): the
    one change ever made to the log, and only to take the address out of the target."""
    return _redact_json_column(
        conn, audit_log.c.target, [audit_log.c.tenant_id == tenant_id], spellings, pattern
    )


def erase_campaign_metadata(
    conn: Connection, tenant_id: str, spellings: list[str], pattern: re.Pattern[str]
) -> int:
    """Campaigns whose metadata (the client's own JSON, kept as given) named the address."""
    return _redact_json_column(
        conn, campaigns.c.metadata, [campaigns.c.tenant_id == tenant_id], spellings, pattern
    )


def erase_webhook_payloads(
    conn: Connection, tenant_id: str, spellings: list[str], pattern: re.Pattern[str]
) -> int:
    """Webhook deliveries whose own payload named the address (campaign events carry the
    campaign's metadata), made or still to be made: redacted, and still made."""
    scope = [webhook_deliveries.c.tenant_id == tenant_id, webhook_deliveries.c.payload.is_not(None)]
    return _redact_json_column(conn, webhook_deliveries.c.payload, scope, spellings, pattern)


def _redact_json_column(
    conn: Connection,
    column: Any,
    scope: list[Any],
    spellings: list[str],
    pattern: re.Pattern[str],
) -> int:
    """Rows in ``scope`` whose JSON ``column`` names the address (its table's key is ``id``):
    the address out of the value; how many rows changed."""
    table = column.table
    rows = conn.execute(
        select(table.c.id, column).where(*scope, _mentions(cast(column, String), spellings))
    ).all()
    changed = 0
    for row_id, value in rows:
        redacted = redact_json(value, pattern)
        if redacted != value:
            conn.execute(update(table).where(table.c.id == row_id).values({column.name: redacted}))
            changed += 1
    return changed


def sent_message_ids(conn: Connection, pks: list[int]) -> list[str]:
    """The Message-IDs those messages went out with (the capture outbox is keyed by them)."""
    if not pks:
        return []
    return list(
        conn.execute(
            select(messages.c.message_id).where(
                messages.c.id.in_(pks), messages.c.message_id.is_not(None)
            )
        ).scalars()
    )


def source_files(conn: Connection, tenant_id: str) -> list[Any]:
    """The tenant's recipient files whose CSV is still kept."""
    return list(
        conn.execute(
            select(files.c.id, files.c.blob_key).where(
                files.c.tenant_id == tenant_id,
                files.c.status == "uploaded",
                files.c.source_deleted_at.is_(None),
            )
        ).all()
    )


def replace_file_blob(
    conn: Connection, file_id: str, old_key: str, new_key: str, size: int | None
) -> bool:
    """Point the file at its rewritten CSV; False if it changed meanwhile (then the caller
    drops ``new_key``)."""
    return (
        conn.execute(
            update(files)
            .where(files.c.id == file_id, files.c.blob_key == old_key)
            .values(blob_key=new_key, size=size)
        ).rowcount
        == 1
    )


def _mentions(column: Any, spellings: list[str]) -> Any:
    """A cheap first filter in SQL (any spelling, any case); the pattern then decides."""
    lowered = func.lower(column)
    condition = None
    for spelling in {s.lower() for s in spellings if s.isascii()} or {""}:
        clause = lowered.contains(spelling, autoescape=True)
        condition = clause if condition is None else condition | clause
    return condition
