"""Empties the personalisation fields of messages that were done long enough ago: they are
never rendered again, while their status, counts and events stay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from postroom.campaigns.states import FINAL_MESSAGE_STATUSES, CampaignStatus
from postroom.db.tables import campaigns, messages
from postroom.runtime import Runtime

BATCH_MESSAGES = 2000
BATCH_CAMPAIGNS = 200
EMPTY_FIELDS = "{}"
_FINAL_CAMPAIGN_STATUSES = (
    CampaignStatus.COMPLETED,
    CampaignStatus.FAILED,
    CampaignStatus.CANCELLED,
)


@dataclass
class PersonalisationPurge:
    messages: int = 0
    campaigns_done: int = 0  # campaigns with nothing left to purge, not looked at again


def purge_personalisation(rt: Runtime, now: datetime, days: float) -> PersonalisationPurge:
    """Empty the fields of every message whose final status is ``days`` or more old, a
    batch at a time in short transactions (statements that any number of workers may repeat
    at once). A campaign that ended before the cutoff is then marked done."""
    done = PersonalisationPurge()
    if days <= 0:
        return done
    cutoff = now - timedelta(days=days)
    after = ""
    while True:
        with rt.db.read_latest() as conn:
            batch = conn.execute(
                select(campaigns.c.id, campaigns.c.status, campaigns.c.completed_at)
                .where(
                    campaigns.c.personalisation_purged_at.is_(None),
                    campaigns.c.status != CampaignStatus.PROCESSING,
                    campaigns.c.created_at <= cutoff,
                    campaigns.c.id > after,
                )
                .order_by(campaigns.c.id)
                .limit(BATCH_CAMPAIGNS)
            ).all()
        for campaign in batch:
            done.messages += _purge_campaign(rt, campaign.id, cutoff)
            has_ended = campaign.status in _FINAL_CAMPAIGN_STATUSES
            if has_ended and campaign.completed_at is not None and campaign.completed_at <= cutoff:
                with rt.db.write() as conn:
                    done.campaigns_done += _mark_done(conn, campaign.id, now)
        if len(batch) < BATCH_CAMPAIGNS:
            return done
        after = batch[-1].id


def _purge_campaign(rt: Runtime, campaign_id: str, cutoff: datetime) -> int:
    purged = 0
    for status in FINAL_MESSAGE_STATUSES:
        after = 0
        while True:
            # Walks ix_messages_campaign_status (campaign, status, id) from where it left off.
            with rt.db.write() as conn:
                pks = list(
                    conn.execute(
                        select(messages.c.id)
                        .where(
                            messages.c.campaign_id == campaign_id,
                            messages.c.status == status,
                            messages.c.id > after,
                            messages.c.updated_at <= cutoff,
                            messages.c.fields != EMPTY_FIELDS,
                        )
                        .order_by(messages.c.id)
                        .limit(BATCH_MESSAGES)
                    ).scalars()
                )
                if pks:
                    purged += conn.execute(
                        update(messages)
                        .where(messages.c.id.in_(pks), messages.c.status == status)
                        .values(fields=EMPTY_FIELDS)
                    ).rowcount
            if len(pks) < BATCH_MESSAGES:
                break
            after = pks[-1]
    return purged


def _mark_done(conn: Connection, campaign_id: str, now: datetime) -> int:
    return conn.execute(
        update(campaigns)
        .where(campaigns.c.id == campaign_id, campaigns.c.personalisation_purged_at.is_(None))
        .values(personalisation_purged_at=now)
    ).rowcount
