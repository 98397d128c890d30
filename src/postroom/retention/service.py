"""One retention run: source CSVs, message personalisation and finished webhook deliveries,
as the settings say."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from postroom.retention.personalisation import purge_personalisation
from postroom.retention.sources import delete_expired_sources
from postroom.retention.webhook_deliveries import delete_finished_deliveries
from postroom.runtime import Runtime

log = logging.getLogger(__name__)

#: How often each worker runs it.
RETENTION_INTERVAL_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class RetentionReport:
    sources_deleted: int
    messages_purged: int
    campaigns_purged: int
    webhook_deliveries_deleted: int


def run_retention(rt: Runtime) -> RetentionReport:
    """Apply POSTROOM_SOURCE_RETENTION_DAYS, POSTROOM_PERSONALISATION_RETENTION_DAYS and
    POSTROOM_WEBHOOK_DELIVERY_RETENTION_DAYS now."""
    now = rt.clock.now()
    settings = rt.settings
    sources = delete_expired_sources(rt, now, settings.source_retention_days)
    purge = purge_personalisation(rt, now, settings.personalisation_retention_days)
    deliveries = delete_finished_deliveries(rt, now, settings.webhook_delivery_retention_days)
    report = RetentionReport(sources, purge.messages, purge.campaigns_done, deliveries)
    if sources or purge.messages or purge.campaigns_done or deliveries:
        log.info(
            "retention: %d source files deleted, personalisation of %d messages purged "
            "(%d campaigns done), %d finished webhook deliveries deleted",
            sources,
            purge.messages,
            purge.campaigns_done,
            deliveries,
        )
    return report
