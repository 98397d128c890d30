"""Analytics rollups, kept in the same transaction as the events they count.

Four tables, each one upserted row per distinct key of a batch of facts:

* ``analytics_minutes``: per campaign, minute and event type, ``events`` (every event) and
  ``uniques`` (the first of its kind for its message: unique recipients), with the tenant
  for the tenant-wide view. Hours and days are sums of minutes.
* ``analytics_links``: per campaign and clicked URL, ``clicks`` and ``unique_clicks`` (the
  message's first click, credited to the URL clicked first).
* ``analytics_bounces``: per campaign and (bounce_type, status, subtype), every bounce event.
* ``analytics_domains``: per campaign and recipient domain, unique recipients of each kind.

A tracking hit flagged ``suspected_bot`` is not applied to its message and is not counted here
at all: the figures are what people did. ``rebuild`` recomputes a campaign's rollups from its
events (applied in id order, as they were incrementally) for repair and seeding.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from postroom.db.tables import (
    analytics_bounces,
    analytics_domains,
    analytics_links,
    analytics_minutes,
    events,
    messages,
)

#: The event types counted per recipient domain.
DOMAIN_TYPES = ("sent", "delivered", "bounced", "complained", "opened", "clicked", "unsubscribed")
_REBUILD_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class EventFacts:
    """What the rollups need to know of one stored event."""

    tenant_id: str
    campaign_id: str
    type: str
    occurred_at: datetime
    recipient_domain: str | None
    first: bool  # the first event of its type for its message
    url: str | None = None  # clicked events
    bounce_reason: tuple[str, str, str] | None = None  # (bounce_type, status, subtype)


def recipient_domain(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1].lower()[:255]


def bounce_reason(data: dict[str, Any]) -> tuple[str, str, str]:
    return (
        str(data.get("bounce_type") or "")[:40],
        str(data.get("status") or "")[:40],
        str(data.get("bounce_subtype") or "")[:80],
    )


def facts_of(
    tenant_id: str,
    campaign_id: str,
    event_type: str,
    occurred_at: datetime,
    email: str | None,
    data: dict[str, Any] | None,
    *,
    first: bool,
) -> EventFacts:
    """The facts of one event, from its row's fields."""
    data = data or {}
    url = data.get("url") if event_type == "clicked" else None
    return EventFacts(
        tenant_id=tenant_id,
        campaign_id=campaign_id,
        type=event_type,
        occurred_at=occurred_at,
        recipient_domain=recipient_domain(email),
        first=first,
        url=str(url)[:2000] if url else None,
        bounce_reason=bounce_reason(data) if event_type == "bounced" else None,
    )


def record_facts(conn: Connection, facts: Sequence[EventFacts]) -> None:
    """Add a batch of events to the rollups: summed in Python, one upsert per table."""
    if not facts:
        return
    minutes: dict[tuple[str, datetime, str], list[Any]] = {}
    links: dict[tuple[str, str], list[int]] = {}
    bounces: Counter[tuple[str, str, str, str]] = Counter()
    domains: dict[tuple[str, str], Counter[str]] = {}
    for fact in facts:
        bucket = fact.occurred_at.replace(second=0, microsecond=0)
        minute = minutes.setdefault((fact.campaign_id, bucket, fact.type), [fact.tenant_id, 0, 0])
        minute[1] += 1
        minute[2] += int(fact.first)
        if fact.url is not None:
            link = links.setdefault((fact.campaign_id, fact.url), [0, 0])
            link[0] += 1
            link[1] += int(fact.first)
        if fact.bounce_reason is not None:
            bounces[(fact.campaign_id, *fact.bounce_reason)] += 1
        if fact.first and fact.type in DOMAIN_TYPES:
            key = (fact.campaign_id, fact.recipient_domain or "")
            domains.setdefault(key, Counter())[fact.type] += 1
    _upsert(
        conn,
        analytics_minutes,
        [
            {
                "campaign_id": c,
                "bucket": b,
                "type": t,
                "tenant_id": v[0],
                "events": v[1],
                "uniques": v[2],
            }
            for (c, b, t), v in minutes.items()
        ],
        ("events", "uniques"),
    )
    _upsert(
        conn,
        analytics_links,
        [
            {"campaign_id": c, "url": u, "clicks": v[0], "unique_clicks": v[1]}
            for (c, u), v in links.items()
        ],
        ("clicks", "unique_clicks"),
    )
    _upsert(
        conn,
        analytics_bounces,
        [
            {"campaign_id": c, "bounce_type": t, "status": s, "subtype": st, "count": n}
            for (c, t, s, st), n in bounces.items()
        ],
        ("count",),
    )
    _upsert(
        conn,
        analytics_domains,
        [
            {"campaign_id": c, "domain": d, **{name: n[name] for name in DOMAIN_TYPES}}
            for (c, d), n in domains.items()
        ],
        DOMAIN_TYPES,
    )


def _upsert(
    conn: Connection, table: Table, rows: list[dict[str, Any]], added: Iterable[str]
) -> None:
    """Insert the rows, or add their counts to the rows already there (SQLite and PostgreSQL
    have the same ON CONFLICT … DO UPDATE, from different dialect modules)."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    keys = [column.name for column in table.primary_key.columns]
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=keys,
            set_={name: table.c[name] + statement.excluded[name] for name in added},
        ),
        rows,
    )


def rebuild(conn: Connection, campaign_id: str) -> int:
    """Recompute a campaign's rollups from its stored events; the number of events counted."""
    for table in (analytics_minutes, analytics_links, analytics_bounces, analytics_domains):
        conn.execute(delete(table).where(table.c.campaign_id == campaign_id))
    seen: set[tuple[int, str]] = set()
    counted = 0
    after = 0
    while True:
        # Pages by id rather than one streamed cursor: the upserts share the connection.
        rows = conn.execute(
            select(
                events.c.id,
                events.c.tenant_id,
                events.c.message_pk,
                events.c.type,
                events.c.occurred_at,
                events.c.data,
                messages.c.email,
            )
            .join(messages, messages.c.id == events.c.message_pk)
            .where(events.c.campaign_id == campaign_id, events.c.id > after)
            .order_by(events.c.id)
            .limit(_REBUILD_CHUNK)
        ).all()
        if not rows:
            return counted
        after = rows[-1].id
        batch: list[EventFacts] = []
        for row in rows:
            data = row.data or {}
            if data.get("suspected_bot"):
                continue
            key = (row.message_pk, row.type)
            batch.append(
                facts_of(
                    row.tenant_id,
                    campaign_id,
                    row.type,
                    row.occurred_at,
                    row.email,
                    data,
                    first=key not in seen,
                )
            )
            seen.add(key)
        counted += len(batch)
        record_facts(conn, batch)
