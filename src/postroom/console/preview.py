"""The review step's preview: the campaign's template rendered for its first recipient with
the sender's own code (the same fields, the same sandbox)."""

from __future__ import annotations

from dataclasses import dataclass

from postroom.campaigns import service
from postroom.events.unsubscribe import unsubscribe_url
from postroom.runtime import Runtime
from postroom.templates import service as template_service
from postroom.templates.builtins import message_fields
from postroom.templates.limits import RenderLimits
from postroom.templates.pinning import load_pinned_template
from postroom.templates.sandbox import RenderError, compile_template


@dataclass(frozen=True, slots=True)
class Preview:
    recipient: str
    subject: str | None
    html: str | None
    problem: str | None


def first_recipient_preview(rt: Runtime, tenant_id: str, campaign_id: str) -> Preview | None:
    with rt.db.read_latest() as conn:
        campaign = service.get_campaign(conn, tenant_id, campaign_id)
        first = service.first_message(conn, campaign_id)
        template = template_service.get_template(conn, tenant_id, campaign.template_id)
        if first is None:
            return None
        pinned = load_pinned_template(conn, rt.blobs, template)
    email, row = first
    # A placeholder link: a real token would let a click in the preview unsubscribe someone.
    fields = message_fields(row, email, unsubscribe_url(rt.settings.base_url, "preview"))
    try:
        limits = RenderLimits.from_settings(rt.settings)
        compiled = compile_template(
            pinned.html, pinned.subject, limits=limits, library=pinned.library
        )
        content = compiled.render(fields)
    except RenderError as exc:
        return Preview(recipient=email, subject=None, html=None, problem=exc.message)
    return Preview(recipient=email, subject=content.subject, html=content.html, problem=None)
