"""The sender: claim due messages, render and compose them, hand them to the transport,
record what the relay said. One batch at a time, as named steps."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from postroom.campaigns import lifecycle, queue
from postroom.campaigns.queue import Outcome
from postroom.campaigns.states import MessageStatus
from postroom.delivery.compose import CampaignComposer, ComposeError, Mailbox, wire_address
from postroom.delivery.retry import next_attempt_at
from postroom.observability.metrics import record_sends
from postroom.runtime import Runtime
from postroom.templates.sandbox import CompiledTemplate, RenderError, TemplateCache
from postroom.templates.service import get_template
from postroom.transports.base import Accepted, Envelope, Permanent, Transport

MIN_SHARE_PER_CAMPAIGN = 10
PREPARE_SLICE = 16  # messages rendered between two looks at the network (a few ms)


@dataclass
class CampaignContext:
    """What every message of one campaign shares, prepared once."""

    campaign_id: str
    template: CompiledTemplate
    composer: CampaignComposer
    sender: str
    domain: str


@dataclass
class Prepared:
    """A claimed message, either composed and ready to send or already failed."""

    message_pk: int
    campaign_id: str
    attempts: int
    envelope: Envelope | None = None
    failure: str | None = None


class Sender:
    """Sends for one worker; keeps compiled templates and campaign contexts between batches."""

    def __init__(self, rt: Runtime, transport: Transport, worker_id: str) -> None:
        self.rt = rt
        self.transport = transport
        self.worker_id = worker_id
        self.templates = TemplateCache()
        self._contexts: dict[str, CampaignContext] = {}

    async def send_due(self) -> int:
        """Send one batch of due messages; returns how many were handled (0: nothing due)."""
        claimed = await asyncio.to_thread(self._claim)
        if not claimed:
            return 0
        prepared = await self._prepare(claimed)
        ready = [p for p in prepared if p.envelope is not None]
        started = time.perf_counter()
        results = await self.transport.send_many([p.envelope for p in ready if p.envelope])
        record_sends(self.transport.name, results, time.perf_counter() - started)
        now = self.rt.clock.now()
        outcomes = [self._failure(p) for p in prepared if p.envelope is None]
        outcomes += [self._outcome(p, r, now) for p, r in zip(ready, results, strict=True)]
        await asyncio.to_thread(self._record, outcomes, {p.campaign_id for p in prepared})
        return len(claimed)

    def _claim(self) -> list[Row[Any]]:
        settings = self.rt.settings
        now = self.rt.clock.now()
        claimed: list[Row[Any]] = []
        with self.rt.db.write() as conn:
            active = lifecycle.sending_campaigns(conn)
            self.forget_finished({campaign.id for campaign in active})
            if not active:
                return []
            share = max(MIN_SHARE_PER_CAMPAIGN, settings.send_batch_size // len(active))
            for campaign in active:
                room = settings.send_batch_size - len(claimed)
                if room <= 0:
                    break
                claimed += queue.claim_messages(
                    conn,
                    campaign.id,
                    self.worker_id,
                    limit=min(share, room),
                    now=now,
                    lease_seconds=settings.lease_seconds,
                )
            for campaign in active:
                if campaign.id not in self._contexts:
                    self._contexts[campaign.id] = self._context(conn, campaign)
        return claimed

    def _context(self, conn: Any, campaign: Row[Any]) -> CampaignContext:
        template = get_template(conn, campaign.tenant_id, campaign.template_id)
        html = self.rt.blobs.read_bytes(template.blob_key).decode("utf-8-sig")
        compiled = self.templates.get_or_compile(
            f"{template.id}:{template.sha256}", html, template.subject
        )
        reply_to = Mailbox(campaign.reply_to) if campaign.reply_to else None
        sender = Mailbox(campaign.from_email, campaign.from_name)
        return CampaignContext(
            campaign_id=campaign.id,
            template=compiled,
            composer=CampaignComposer(sender=sender, reply_to=reply_to),
            sender=wire_address(campaign.from_email),
            domain=wire_address(campaign.from_email).rpartition("@")[2],
        )

    async def _prepare(self, claimed: list[Row[Any]]) -> list[Prepared]:
        # Rendering and composing is pure CPU: it runs on the event loop a slice at a time,
        # so that SMTP replies are read in between. A thread would gain nothing under the
        # GIL and would make the loop wait for the GIL on every socket write.
        now = self.rt.clock.now()
        prepared: list[Prepared] = []
        for start in range(0, len(claimed), PREPARE_SLICE):
            prepared += [
                self._prepare_one(row, now) for row in claimed[start : start + PREPARE_SLICE]
            ]
            await asyncio.sleep(0)
        return prepared

    def _prepare_one(self, row: Row[Any], now: datetime) -> Prepared:
        prepared = Prepared(row.id, row.campaign_id, row.attempts)
        context = self._contexts[row.campaign_id]
        fields: dict[str, str] = json.loads(row.fields)
        fields["email"] = row.email
        try:
            content = context.template.render(fields)
        except RenderError as exc:
            prepared.failure = f"render_error: {exc.message}"
            return prepared
        message_id = f"{row.id}.{row.campaign_id}@{context.domain}"
        try:
            recipient = wire_address(row.email)
            data = context.composer.compose(
                recipient=Mailbox(row.email),
                subject=content.subject,
                html=content.html,
                text=content.text,
                message_id=message_id,
                date=now,
            )
        except ComposeError as exc:
            prepared.failure = f"compose_error: {exc.message}"
            return prepared
        prepared.envelope = Envelope(
            sender=context.sender,
            recipient=recipient,
            data=data,
            message_id=message_id,
            needs_smtputf8=not (recipient.isascii() and context.sender.isascii()),
        )
        return prepared

    def _failure(self, prepared: Prepared) -> Outcome:
        return Outcome(
            prepared.message_pk,
            prepared.campaign_id,
            MessageStatus.FAILED,
            error=prepared.failure,
            is_attempt=False,
        )

    def _outcome(self, prepared: Prepared, result: Any, now: datetime) -> Outcome:
        assert prepared.envelope is not None
        message_id = prepared.envelope.message_id
        if isinstance(result, Accepted):
            return Outcome(
                prepared.message_pk,
                prepared.campaign_id,
                MessageStatus.SENT,
                relay_reply=result.reply,
                message_id=message_id,
            )
        error = result.reason  # the relay's reply, code included
        if isinstance(result, Permanent):
            return Outcome(
                prepared.message_pk,
                prepared.campaign_id,
                MessageStatus.FAILED,
                error=error,
                message_id=message_id,
            )
        settings = self.rt.settings
        retry_at = next_attempt_at(
            prepared.attempts + 1,
            now,
            base_seconds=settings.retry_base_seconds,
            cap_seconds=settings.retry_cap_seconds,
        )
        return Outcome(
            prepared.message_pk,
            prepared.campaign_id,
            MessageStatus.QUEUED,
            error=error,
            retry_at=retry_at,
            message_id=message_id,
        )

    def _record(self, outcomes: list[Outcome], campaign_ids: set[str]) -> None:
        now = self.rt.clock.now()
        with self.rt.db.write() as conn:
            queue.record_outcomes(conn, self.worker_id, outcomes, now)
            lifecycle.complete_finished_campaigns(conn, now, sorted(campaign_ids))

    def forget_finished(self, active_ids: set[str]) -> None:
        """Drop contexts of campaigns that are no longer sending."""
        for campaign_id in set(self._contexts) - active_ids:
            del self._contexts[campaign_id]
