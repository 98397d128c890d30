"""``postroom analytics rebuild`` and ``postroom retention run``: upkeep an admin runs by hand
(workers do the same on their own)."""

from __future__ import annotations

from dataclasses import asdict

import typer

from postroom.cli.admin import JsonOption, admin_runtime
from postroom.cli.output import console, print_json, reports_errors
from postroom.errors import NotFound

analytics_app = typer.Typer(help="Analytics rollups.", no_args_is_help=True)
retention_app = typer.Typer(
    help="Retention of recipient files and personalisation.", no_args_is_help=True
)


@analytics_app.command("rebuild")
@reports_errors
def analytics_rebuild(campaign_id: str) -> None:
    """Recompute a campaign's analytics rollups from its stored events."""
    from sqlalchemy import select

    from postroom.analytics import rollups
    from postroom.db.tables import campaigns

    rt = admin_runtime()
    with rt.db.write() as conn:
        if (
            conn.execute(select(campaigns.c.id).where(campaigns.c.id == campaign_id)).first()
            is None
        ):
            raise NotFound(f"no campaign {campaign_id}", code="campaign_not_found")
        counted = rollups.rebuild(conn, campaign_id)
    console.print(f"rebuilt analytics of {campaign_id} from {counted} events")


@retention_app.command("run")
@reports_errors
def retention_run(as_json: JsonOption = False) -> None:
    """Apply the retention settings now (workers also do so about hourly) and say what went."""
    from postroom.retention.service import run_retention

    rt = admin_runtime()
    report = run_retention(rt)
    if as_json:
        print_json(asdict(report))
        return
    settings = rt.settings
    console.print(
        f"deleted the CSV of {report.sources_deleted} recipient files "
        f"(POSTROOM_SOURCE_RETENTION_DAYS={settings.source_retention_days:g})"
    )
    console.print(
        f"purged the personalisation of {report.messages_purged} messages, "
        f"{report.campaigns_purged} campaigns done "
        f"(POSTROOM_PERSONALISATION_RETENTION_DAYS={settings.personalisation_retention_days:g})"
    )
    console.print(
        f"deleted {report.webhook_deliveries_deleted} finished webhook deliveries "
        f"(POSTROOM_WEBHOOK_DELIVERY_RETENTION_DAYS={settings.webhook_delivery_retention_days:g})"
    )
