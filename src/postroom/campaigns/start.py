"""Starting a campaign, the one way the API and the console both do it: notice its uploads,
check the tenant's quotas before anything is written, create the campaign and tell the
workers, so that a worker in any process picks its file up at once."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from postroom.campaigns import service
from postroom.campaigns.quotas import campaign_quota
from postroom.campaigns.schemas import CampaignRequest
from postroom.campaigns.uploads import notice_campaign_uploads
from postroom.db.notices import notify_workers
from postroom.runtime import Runtime


def start_campaign(
    rt: Runtime,
    tenant_id: str,
    body: CampaignRequest,
    *,
    on_created: Callable[[Connection, str], None] | None = None,
) -> str:
    """Create the campaign ``body`` asks for and return its id. ``on_created`` runs in the
    creating transaction (the API records its idempotent answer there), so either both are
    written or neither. A refused campaign raises its PostroomError and writes nothing."""
    # Uploads straight to S3 are noticed here if nothing noticed them before.
    notice_campaign_uploads(rt, tenant_id, body.template_id, body.file_id)
    quota = campaign_quota(
        rt, tenant_id, body.file_id, delimiter=body.csv_delimiter, email_column=body.email_column
    )
    with rt.db.write() as conn:
        campaign_id = service.create_campaign(
            conn,
            tenant_id,
            body,
            default_from=rt.settings.default_from,
            now=rt.clock.now(),
            quota=quota,
        )
        if on_created is not None:
            on_created(conn, campaign_id)
        notify_workers(conn, "campaign")
    rt.wakeups.notify()
    return campaign_id
