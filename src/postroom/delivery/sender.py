"""The sender: claim due messages, render and compose them, hand them to the transport,
record what the relay said. One batch at a time, as named steps."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row

from postroom.campaigns import lifecycle, queue, withheld
from postroom.campaigns.outcomes import Outcome, record_outcomes
from postroom.campaigns.states import MessageStatus
from postroom.delivery import breaker_store
from postroom.delivery.breaker import Admission, Breaker, BreakerPolicy, BreakerState, breaker_name
from postroom.delivery.compose import CampaignComposer, ComposeError, Mailbox, wire_address
from postroom.delivery.rate_gate import RateGate, throttle_pause
from postroom.delivery.retry import next_retry_at
from postroom.delivery.sending_rates import SendingRates, TenantRates
from postroom.delivery.tracking_html import LinkRewriter, add_pixel
from postroom.errors import PostroomError
from postroom.events.service import SendRejection, record_send_rejections
from postroom.events.tracking import TrackingUrls
from postroom.events.unsubscribe import unsubscribe_token, unsubscribe_url
from postroom.events.verp import verp_address, verp_token
from postroom.observability.metrics import record_sends
from postroom.rates import parse_domain_rates, parse_rate
from postroom.runtime import Runtime
from postroom.suppressions import store as suppression_store
from postroom.templates.builtins import message_fields
from postroom.templates.limits import RenderLimits
from postroom.templates.pinning import load_pinned_template
from postroom.templates.sandbox import CompiledTemplate, RenderError, TemplateCache
from postroom.templates.service import get_template
from postroom.tenants.service import rate_overrides
from postroom.transports.base import Accepted, Envelope, Permanent, Transient, Transport

log = logging.getLogger(__name__)

MIN_SHARE_PER_CAMPAIGN = 10
PREPARE_SLICE = 16  # messages rendered between two looks at the network (a few ms)
# A provider that says we send too fast gets a pause from this worker, doubling while it
# keeps saying so.
THROTTLE_PAUSE_SECONDS = (1.0, 30.0)


@dataclass
class CampaignContext:
    """What every message of one campaign shares, prepared once."""

    campaign_id: str
    tenant_id: str
    template: CompiledTemplate
    composer: CampaignComposer
    sender: str
    domain: str
    track_opens: bool = False
    track_clicks: bool = False
    links: LinkRewriter = field(default_factory=LinkRewriter)


@dataclass
class Prepared:
    """A claimed message, either composed and ready to send or already failed."""

    message_pk: int
    campaign_id: str
    attempts: int
    first_attempt_at: datetime | None
    possible_duplicate: bool
    envelope: Envelope | None = None
    failure: str | None = None


class Sender:
    """Sends for one worker; keeps compiled templates and campaign contexts between batches."""

    def __init__(self, rt: Runtime, transport: Transport, worker_id: str) -> None:
        self.rt = rt
        self.transport = transport
        self.worker_id = worker_id
        self.templates = TemplateCache(limits=RenderLimits.from_settings(rt.settings))
        self._contexts: dict[str, CampaignContext] = {}
        #: Campaigns whose template cannot be read back or compiled (a damaged blob, say):
        #: why, which each of their claimed messages fails with.
        self._unsendable: dict[str, str] = {}
        settings = rt.settings
        self.breaker_name = breaker_name(settings.transport_url)
        self.breaker_policy = BreakerPolicy(
            failure_threshold=settings.breaker_failure_threshold,
            cooldown_seconds=settings.breaker_cooldown_seconds,
            max_cooldown_seconds=settings.breaker_max_cooldown_seconds,
        )
        self._throttle_pause = 0.0
        self.rates = SendingRates(
            transport=parse_rate(settings.rate_limit),
            tenant=parse_rate(settings.tenant_rate_limit),
            domains=parse_domain_rates(settings.domain_rate_limits),
        )
        #: After a claim that the rate limits left empty: seconds until they allow more.
        self.wait_hint: float | None = None
        self._send_quota: float | None = None
        self.tracking_urls = TrackingUrls(rt.secret_key, settings.base_url)
        # VERP return paths for bounces in SMTP mode; SES reports bounces by itself.
        self.bounce_address = (
            settings.bounce_address if not settings.transport_url.startswith("ses:") else ""
        )

    async def send_due(self, stopping: Callable[[], bool] = lambda: False) -> int:
        """Send one batch of due messages; returns how many were handled (0: nothing due, or
        the breaker is open). When ``stopping`` turns true before the batch goes out, its
        messages are handed back untouched."""
        await self._respect_send_quota()
        claimed = await asyncio.to_thread(self._claim)
        if not claimed:
            return 0
        prepared = await self._prepare(claimed)
        if stopping():
            await asyncio.to_thread(self._release, [p.message_pk for p in prepared])
            return len(claimed)
        ready = [p for p in prepared if p.envelope is not None]
        started = time.perf_counter()
        async with self._leases_kept([p.message_pk for p in ready]):
            results = await self.transport.send_many([p.envelope for p in ready if p.envelope])
        record_sends(self.transport.name, results, time.perf_counter() - started)
        now = self.rt.clock.now()
        outcomes = [self._failure(p) for p in prepared if p.envelope is None]
        outcomes += [self._outcome(p, r, now) for p, r in zip(ready, results, strict=True)]
        rejections = [
            self._rejection(p, r)
            for p, r in zip(ready, results, strict=True)
            if isinstance(r, Permanent) and r.code is not None and 500 <= r.code < 600
        ]
        campaign_ids = {p.campaign_id for p in prepared}
        await asyncio.to_thread(self._record, outcomes, results, campaign_ids, rejections)
        return len(claimed)

    async def _respect_send_quota(self) -> None:
        """Never send faster than the provider allows the account (SES's max send rate),
        whatever POSTROOM_RATE_LIMIT says. Asked until known (the transport caches it)."""
        if self._send_quota is not None:
            return
        quota = await self.transport.max_send_rate()
        if quota:
            self._send_quota = quota
            configured = self.rates.transport
            self.rates = replace(
                self.rates, transport=min(configured, quota) if configured > 0 else quota
            )

    def _claim(self) -> list[Row[Any]]:
        settings = self.rt.settings
        now = self.rt.clock.now()
        claimed: list[Row[Any]] = []
        self.wait_hint = None
        with self.rt.db.write() as conn:
            batch_size = self._admitted_batch(conn, now)
            if batch_size == 0:
                return []
            active = lifecycle.sending_campaigns(conn)
            self.forget_finished({campaign.id for campaign in active})
            if not active:
                return []
            tenant_of = {campaign.id: campaign.tenant_id for campaign in active}
            gate = self._rate_gate(conn, set(tenant_of.values()), now)
            batch_size = min(batch_size, gate.transport_room())
            share = max(MIN_SHARE_PER_CAMPAIGN, batch_size // len(active))
            for campaign in active:
                room = min(batch_size - len(claimed), share, gate.tenant_room(campaign.tenant_id))
                if room <= 0 or not self._prepared_for(conn, campaign):
                    continue
                batch = queue.claim_messages(
                    conn,
                    campaign.id,
                    self.worker_id,
                    limit=room,
                    now=now,
                    lease_seconds=settings.lease_seconds,
                )
                claimed += self._skip_suppressed(conn, campaign.tenant_id, batch, now)
            postponed = gate.grant(claimed, tenant_of)
            if postponed is not None:
                # Their recipient domain is at its limit: back to the queue until it is not.
                queue.release_leases(
                    conn,
                    self.worker_id,
                    postponed.message_pks,
                    now,
                    available_at=datetime.fromtimestamp(postponed.available_at, UTC),
                    why="rate limit of the recipient domain",
                )
                waiting = set(postponed.message_pks)
                claimed = [row for row in claimed if row.id not in waiting]
            if not claimed and gate.wait_seconds:
                self.wait_hint = gate.wait_seconds
        return claimed

    def _prepared_for(self, conn: Any, campaign: Row[Any]) -> bool:
        """Build the campaign's context once; False (claim none of its messages now) when
        its template could not be read for a reason that may pass (the blob store is down).
        One whose template can never be read or compiled is marked unsendable: its messages
        are claimed and fail with the reason, and the other campaigns go on either way."""
        if campaign.id in self._contexts or campaign.id in self._unsendable:
            return True
        try:
            self._contexts[campaign.id] = self._context(conn, campaign)
        except (PostroomError, UnicodeDecodeError) as exc:
            reason = (
                f"{exc.code}: {exc.message}"
                if isinstance(exc, PostroomError)
                else f"template_unreadable: the template is not UTF-8 ({exc.reason})"
            )
            log.error("campaign %s cannot be sent: %s", campaign.id, reason)
            self._unsendable[campaign.id] = reason
        except Exception:
            log.exception("campaign %s: its template could not be read; it waits", campaign.id)
            return False
        return True

    def _skip_suppressed(
        self, conn: Any, tenant_id: str, batch: list[Row[Any]], now: datetime
    ) -> list[Row[Any]]:
        """Addresses that went on the suppression list after the file was in are not sent."""
        listed = suppression_store.listed_keys(
            conn, tenant_id, (r.email_key for r in batch), self.rt.secret_key
        )
        if not listed:
            return batch
        suppressed = [r for r in batch if r.email_key in listed]
        withheld.suppress_claimed(conn, self.worker_id, suppressed, now)
        return [r for r in batch if r.email_key not in listed]

    def _rate_gate(self, conn: Any, tenant_ids: set[str], now: datetime) -> RateGate:
        own = rate_overrides(conn, tenant_ids)
        tenants = {
            tenant_id: TenantRates(own[tenant_id].rate, own[tenant_id].domains)
            if tenant_id in own
            else TenantRates()
            for tenant_id in tenant_ids
        }
        return RateGate.open(conn, self.rates, self.breaker_name, tenants, now)

    def _admitted_batch(self, conn: Any, now: datetime) -> int:
        """How many messages the breaker lets this worker claim: a batch, one probe, or none."""
        breaker = breaker_store.read_breaker(conn, self.breaker_name)
        admission = breaker.admission(now)
        if admission == Admission.BATCH:
            return self.rt.settings.send_batch_size
        if admission == Admission.PROBE:
            deadline = now + timedelta(seconds=self.rt.settings.lease_seconds)
            if breaker_store.take_probe(conn, self.breaker_name, self.worker_id, now, deadline):
                log.info("breaker %s: probing the relay with one message", self.breaker_name)
                return 1
        return 0

    def _context(self, conn: Any, campaign: Row[Any]) -> CampaignContext:
        template = get_template(conn, campaign.tenant_id, campaign.template_id)
        pinned = load_pinned_template(conn, self.rt.blobs, template)
        compiled = self.templates.get_or_compile(
            pinned.version_key, pinned.html, pinned.subject, pinned.library
        )
        reply_to = Mailbox(campaign.reply_to) if campaign.reply_to else None
        sender = Mailbox(campaign.from_email, campaign.from_name)
        return CampaignContext(
            campaign_id=campaign.id,
            tenant_id=campaign.tenant_id,
            template=compiled,
            composer=CampaignComposer(
                sender=sender,
                reply_to=reply_to,
                extra_headers=[("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")],
            ),
            sender=wire_address(campaign.from_email),
            domain=wire_address(campaign.from_email).rpartition("@")[2],
            track_opens=bool(campaign.track_opens),
            track_clicks=bool(campaign.track_clicks),
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

    def _tracked(self, body: str, context: CampaignContext, pk: int, unsubscribe: str) -> str:
        """The HTML with tracked links and the open pixel, as the campaign asks."""
        if context.track_clicks:
            body = context.links.rewrite(
                body, lambda url: self.tracking_urls.click(pk, url), (unsubscribe,)
            )
        if context.track_opens:
            body = add_pixel(body, self.tracking_urls.pixel(pk))
        return body

    def _prepare_one(self, row: Row[Any], now: datetime) -> Prepared:
        prepared = Prepared(
            row.id, row.campaign_id, row.attempts, row.first_attempt_at, row.possible_duplicate
        )
        unsendable = self._unsendable.get(row.campaign_id)
        if unsendable is not None:
            prepared.failure = unsendable
            return prepared
        context = self._contexts[row.campaign_id]
        unsubscribe = unsubscribe_url(
            self.rt.settings.base_url, unsubscribe_token(self.rt.secret_key, row.id)
        )
        fields = message_fields(json.loads(row.fields), row.email, unsubscribe)
        try:
            content = context.template.render(fields)
        except RenderError as exc:
            # render_error (a missing field, a refused construct) or render_limit (too big,
            # too many loop steps, too slow): this message fails, the batch goes on.
            prepared.failure = f"{exc.code}: {exc.message}"
            return prepared
        html = self._tracked(content.html, context, row.id, unsubscribe)
        message_id = f"{row.id}.{row.campaign_id}@{context.domain}"
        list_unsubscribe = f"<{unsubscribe}>"
        envelope_sender = context.sender
        if self.bounce_address:
            token = verp_token(self.rt.secret_key, context.tenant_id, row.id)
            envelope_sender = verp_address(self.bounce_address, token)
            mailto = verp_address(self.bounce_address, token, unsubscribe=True)
            list_unsubscribe += f", <mailto:{mailto}?subject=unsubscribe>"
        try:
            recipient = wire_address(row.email)
            data = context.composer.compose(
                recipient=Mailbox(row.email),
                subject=content.subject,
                html=html,
                text=content.text,
                message_id=message_id,
                date=now,
                extra_headers=[("List-Unsubscribe", list_unsubscribe)],
            )
        except ComposeError as exc:
            prepared.failure = f"compose_error: {exc.message}"
            return prepared
        prepared.envelope = Envelope(
            sender=envelope_sender,
            recipient=recipient,
            data=data,
            message_id=message_id,
            needs_smtputf8=not (recipient.isascii() and envelope_sender.isascii()),
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
        pk, campaign_id = prepared.message_pk, prepared.campaign_id
        message_id = prepared.envelope.message_id
        if isinstance(result, Accepted):
            return Outcome(
                pk,
                campaign_id,
                MessageStatus.SENT,
                relay_reply=result.reply,
                message_id=message_id,
                provider_message_id=result.queue_id,
            )
        error = result.reason  # the relay's reply, code included
        if isinstance(result, Permanent):
            return Outcome(
                pk, campaign_id, MessageStatus.FAILED, error=error, message_id=message_id
            )
        newly_duplicate = result.possible_duplicate and not prepared.possible_duplicate
        if result.transport_level or result.throttled:
            # The relay as a whole failed, or the provider dropped the message because we
            # sent too fast: no attempt is charged and the retry budget does not start.
            pause = THROTTLE_PAUSE_SECONDS[0] if result.throttled else 0.0
            return Outcome(
                pk,
                campaign_id,
                MessageStatus.QUEUED,
                error=error,
                message_id=message_id,
                retry_at=now + timedelta(seconds=pause),
                is_attempt=False,
                newly_possible_duplicate=newly_duplicate,
            )
        settings = self.rt.settings
        retry_at = next_retry_at(
            prepared.attempts + 1,
            prepared.first_attempt_at,
            now,
            base_seconds=settings.retry_base_seconds,
            cap_seconds=settings.retry_cap_seconds,
            budget_seconds=settings.retry_budget_seconds,
        )
        if retry_at is None:
            return Outcome(
                pk,
                campaign_id,
                MessageStatus.FAILED,
                error=f"retries_exhausted: {error}",
                message_id=message_id,
                newly_possible_duplicate=newly_duplicate,
            )
        return Outcome(
            pk,
            campaign_id,
            MessageStatus.DEFERRED,
            error=error,
            retry_at=retry_at,
            message_id=message_id,
            newly_possible_duplicate=newly_duplicate,
        )

    def _rejection(self, prepared: Prepared, result: Permanent) -> SendRejection:
        return SendRejection(prepared.message_pk, result.reason, prepared.attempts + 1)

    def _record(
        self,
        outcomes: list[Outcome],
        results: list[Any],
        campaign_ids: set[str],
        rejections: list[SendRejection],
    ) -> None:
        now = self.rt.clock.now()
        failures = [r for r in results if isinstance(r, Transient) and r.transport_level]
        # Any answer about a recipient, even a refusal, shows that the relay itself works.
        answered = sum(
            1
            for r in results
            if not (isinstance(r, Transient) and (r.transport_level or r.throttled))
        )
        pause = self._throttle_pause_after(results)
        with self.rt.db.write() as conn:
            if pause:
                throttle_pause(conn, self.breaker_name, now, pause)
            record_outcomes(conn, self.worker_id, outcomes, now, transport=self.transport.name)
            if rejections:  # a refusal at send time is a bounce the relay told us at once
                record_send_rejections(conn, rejections, source=self.transport.name, now=now)
            lifecycle.complete_finished_campaigns(conn, now, sorted(campaign_ids))
            before, after = breaker_store.record_results(
                conn,
                self.breaker_name,
                successes=answered,
                failures=len(failures),
                last_error=failures[-1].reason if failures else None,
                now=now,
                policy=self.breaker_policy,
            )
        self._log_breaker_change(before, after)

    def _log_breaker_change(self, before: Breaker, after: Breaker) -> None:
        if before.state == after.state:
            return
        if after.state == BreakerState.OPEN:
            log.warning(
                "breaker %s opened after %d transport failures (%s); next probe at %s",
                after.transport,
                after.failures,
                after.last_error,
                after.retry_at,
            )
        elif after.state == BreakerState.CLOSED:
            log.info("breaker %s closed: the relay answers again", after.transport)

    def _throttle_pause_after(self, results: list[Any]) -> float:
        """How long every worker should hold off this transport: the provider throttled us,
        the pause doubles while it keeps doing so; 0 once a batch goes through unthrottled."""
        if not any(isinstance(r, Transient) and r.throttled for r in results):
            self._throttle_pause = 0.0
            return 0.0
        first, cap = THROTTLE_PAUSE_SECONDS
        self._throttle_pause = min(cap, self._throttle_pause * 2 or first)
        log.warning("the provider throttled us: all workers pause %.1f s", self._throttle_pause)
        return self._throttle_pause

    def _release(self, message_pks: list[int]) -> None:
        with self.rt.db.write() as conn:
            queue.release_leases(conn, self.worker_id, message_pks, self.rt.clock.now())

    @contextlib.asynccontextmanager
    async def _leases_kept(self, message_pks: list[int]) -> AsyncIterator[None]:
        """Extend the batch's leases while it is being sent, so a slow relay never makes a
        live worker's messages look abandoned."""
        heartbeat = asyncio.ensure_future(self._heartbeat(message_pks))
        try:
            yield
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _heartbeat(self, message_pks: list[int]) -> None:
        lease_seconds = self.rt.settings.lease_seconds
        while True:
            await asyncio.sleep(lease_seconds / 3)
            try:
                await asyncio.to_thread(self._extend, message_pks, lease_seconds)
            except Exception:
                log.exception("could not extend the leases of a batch in flight")

    def _extend(self, message_pks: list[int], lease_seconds: int) -> None:
        with self.rt.db.write() as conn:
            queue.extend_leases(
                conn, self.worker_id, message_pks, self.rt.clock.now(), lease_seconds
            )

    def forget_finished(self, active_ids: set[str]) -> None:
        """Drop contexts of campaigns that are no longer sending."""
        for campaign_id in set(self._contexts) - active_ids:
            del self._contexts[campaign_id]
        for campaign_id in set(self._unsendable) - active_ids:
            del self._unsendable[campaign_id]
