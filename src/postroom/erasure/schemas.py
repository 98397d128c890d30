"""Wire model of an erasure's report."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErasureCounts(BaseModel):
    """What was erased, by kind; all zero when the address was erased before."""

    messages: int = Field(description="message rows whose address and personalisation went")
    messages_stopped: int = Field(description="of those, ones waiting to be sent: never sent")
    events: int = Field(description="events whose recipient and data were redacted")
    webhook_deliveries: int = Field(description="pending deliveries of those events, dropped")
    row_issues: int = Field(description="rows of file reports (invalid or duplicate rows)")
    files_rewritten: int = Field(description="recipient files rewritten without its rows")
    bounce_mail: int = Field(description="kept bounce or reply mail about its messages, deleted")
    suppressions: int = Field(description="suppression entries now kept as a hash alone")
    audit_entries: int = Field(description="audit log entries that named it")
    campaign_metadata: int = Field(description="campaigns whose metadata named it")
    link_urls: int = Field(
        description="clicked links of its campaigns whose URL carried it (analytics), redacted"
    )
    outbox_messages: int = Field(
        description="messages in the capture outbox (capture:// transport), deleted"
    )
    webhook_payloads: int = Field(
        description="campaign webhook deliveries (made or to be made) whose payload named it"
    )


class ErasureReport(BaseModel):
    erased: str = Field(
        description="the start of the hash it stays on the suppression list as; "
        "the same for every erasure of this address"
    )
    counts: ErasureCounts
