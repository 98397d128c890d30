"""Use cases behind the campaign API: create, look up, list, cancel, and the row report."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Connection, Row, case, insert, select

from postroom.campaigns.counts import counts_of
from postroom.campaigns.cursors import decode_cursor, encode_cursor
from postroom.campaigns.quotas import CampaignQuota, charge_campaign
from postroom.campaigns.schemas import (
    CampaignError,
    CampaignPage,
    CampaignRequest,
    CampaignStatusView,
    FileReport,
    MessageCounts,
    MessagePage,
    MessageView,
)
from postroom.campaigns.states import (
    FINAL_MESSAGE_STATUSES,
    CampaignStatus,
    MessageStatus,
)
from postroom.csvcells import neutralised_row
from postroom.db.tables import (
    campaigns,
    files,
    messages,
    row_issues,
    templates,
)
from postroom.db.tables import message_transitions as message_transitions_table
from postroom.errors import BadRequest, Gone, NotFound, Unprocessable
from postroom.ids import new_id
from postroom.tenants.service import tracking_defaults

CSV_DELIMITERS = (",", ";", "\t", "|")


def create_campaign(
    conn: Connection,
    tenant_id: str,
    request: CampaignRequest,
    *,
    default_from: str,
    now: datetime,
    quota: CampaignQuota | None = None,
) -> str:
    """Check everything that can be checked at once (the tenant's quotas too, when
    ``quota`` is given), then record the campaign as ``processing``; the file is read later
    by a worker. Returns the transaction id."""
    template = _row_or_404(conn, templates, tenant_id, request.template_id, "template")
    file = _row_or_404(conn, files, tenant_id, request.file_id, "file")
    _check_ready(template, file)
    from_name, from_email = _sender(request, default_from)
    scheduled_at = _scheduled_at(request.send_at, now)
    if request.csv_delimiter is not None and request.csv_delimiter not in CSV_DELIMITERS:
        raise Unprocessable(
            "csv_delimiter must be one of ',', ';', tab or '|'.",
            code="invalid_delimiter",
            details={"allowed": list(CSV_DELIMITERS)},
        )
    tracking = tracking_defaults(conn, tenant_id)
    if quota is not None:
        charge_campaign(conn, tenant_id, quota, now)
    campaign_id = new_id("cmp")
    conn.execute(
        insert(campaigns).values(
            id=campaign_id,
            tenant_id=tenant_id,
            name=(request.name or file.filename).strip() or file.filename,
            template_id=template.id,
            file_id=file.id,
            from_email=from_email,
            from_name=from_name,
            reply_to=_checked_address(request.reply_to, "reply_to") if request.reply_to else None,
            email_column=request.email_column,
            csv_delimiter=request.csv_delimiter,
            metadata=request.metadata,
            track_opens=tracking.opens if request.track_opens is None else request.track_opens,
            track_clicks=(
                tracking.clicks if request.track_clicks is None else request.track_clicks
            ),
            status=CampaignStatus.PROCESSING,
            scheduled_at=scheduled_at,
            hold=request.hold,
            file_warnings=[],
            rows_done=0,
            valid_rows=0,
            invalid_rows=0,
            duplicate_rows=0,
            created_at=now,
        )
    )
    return campaign_id


def _row_or_404(conn: Connection, table: Any, tenant_id: str, row_id: str, what: str) -> Row[Any]:
    row = conn.execute(
        select(table).where(table.c.id == row_id, table.c.tenant_id == tenant_id)
    ).first()
    if row is None:
        raise NotFound(f"No {what} {row_id!r}.", code=f"{what}_not_found")
    return row


def _check_ready(template: Row[Any], file: Row[Any]) -> None:
    if template.status == "invalid":
        raise Unprocessable(
            "The template is invalid: " + "; ".join(e["message"] for e in template.errors),
            code="template_invalid",
            details={"errors": template.errors},
        )
    if template.status != "ready":
        raise Unprocessable("The template has not been uploaded yet.", code="template_not_uploaded")
    if file.source_deleted_at is not None:
        raise Gone(
            "The file's CSV was deleted by the retention policy; upload it again.",
            code="file_source_deleted",
            details={"source_deleted_at": file.source_deleted_at.isoformat()},
        )
    if file.status != "uploaded":
        raise Unprocessable(
            "The recipient file has not been uploaded yet.", code="file_not_uploaded"
        )


def _sender(request: CampaignRequest, default_from: str) -> tuple[str | None, str]:
    if request.sender is not None:
        return request.sender.name, _checked_address(request.sender.email, "from")
    name, address = parseaddr(default_from)
    return name or None, address


def _checked_address(address: str, field: str) -> str:
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise Unprocessable(
            f"'{field}' is not a valid email address: {exc}",
            code=f"invalid_{field}",
            details={"field": field},
        ) from None


def _scheduled_at(send_at: datetime | None, now: datetime) -> datetime | None:
    if send_at is None:
        return None
    if send_at.tzinfo is None or send_at.utcoffset() is None:
        raise Unprocessable(
            "send_at needs a UTC offset, e.g. 2026-12-01T09:00:00+00:00.",
            code="timezone_required",
        )
    return send_at if send_at > now else None


def get_campaign(conn: Connection, tenant_id: str, campaign_id: str) -> Row[Any]:
    return _row_or_404(conn, campaigns, tenant_id, campaign_id, "campaign")


def campaign_status(campaign: Row[Any], *, base_url: str) -> CampaignStatusView:
    """The status view from the campaign row alone (its counts are kept with every change)."""
    return _status_view(campaign, counts_of(campaign), base_url)


def _status_view(campaign: Row[Any], counts: MessageCounts, base_url: str) -> CampaignStatusView:
    done = sum(getattr(counts, s) for s in FINAL_MESSAGE_STATUSES)
    if campaign.status == CampaignStatus.COMPLETED:
        progress = 1.0
    else:
        progress = done / counts.total if counts.total else 0.0
    error = None
    if campaign.error_code:
        error = CampaignError(code=campaign.error_code, message=campaign.error_message or "")
    return CampaignStatusView(
        transaction_id=campaign.id,
        name=campaign.name,
        status=campaign.status,
        scheduled_at=campaign.scheduled_at,
        error=error,
        counts=counts,
        possible_duplicates=campaign.possible_duplicate_count,
        file=FileReport(
            rows=campaign.valid_rows + campaign.invalid_rows + campaign.duplicate_rows,
            valid=campaign.valid_rows,
            invalid=campaign.invalid_rows,
            duplicates=campaign.duplicate_rows,
            columns=campaign.columns,
            warnings=campaign.file_warnings,
            errors_url=f"{base_url}/api/v1/campaigns/{campaign.id}/errors",
        ),
        progress=round(progress, 4),
        metadata=campaign.metadata,
        track_opens=campaign.track_opens,
        track_clicks=campaign.track_clicks,
        created_at=campaign.created_at,
        started_at=campaign.started_at,
        paused_at=campaign.paused_at,
        completed_at=campaign.completed_at,
    )


def list_campaigns(
    conn: Connection,
    tenant_id: str,
    *,
    base_url: str,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> CampaignPage:
    """Newest first; ``next_cursor`` continues after the last one returned."""
    query = select(campaigns).where(campaigns.c.tenant_id == tenant_id)
    if status is not None:
        query = query.where(campaigns.c.status == _campaign_status(status))
    if cursor is not None:
        created, last_id = decode_cursor(cursor, 2)
        after = datetime.fromisoformat(created)
        query = query.where(
            (campaigns.c.created_at < after)
            | ((campaigns.c.created_at == after) & (campaigns.c.id < last_id))
        )
    query = query.order_by(campaigns.c.created_at.desc(), campaigns.c.id.desc()).limit(limit + 1)
    rows = conn.execute(query).all()
    page = [campaign_status(row, base_url=base_url) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last.created_at.isoformat(), last.id)
    return CampaignPage(campaigns=page, next_cursor=next_cursor)


def _campaign_status(value: str) -> CampaignStatus:
    try:
        return CampaignStatus(value)
    except ValueError:
        raise BadRequest(
            f"Unknown status {value!r}.",
            code="invalid_status",
            details={"allowed": [s.value for s in CampaignStatus]},
        ) from None


# MessageView's fields, and the message columns they are read from, in one order.
_MESSAGE_VIEW_FIELDS = tuple(MessageView.model_fields)
_MESSAGE_VIEW_SOURCES: dict[str, Any] = {
    "row": messages.c.row_number,
    "next_attempt_at": case(
        (messages.c.status == MessageStatus.DEFERRED.value, messages.c.available_at), else_=None
    ),
}
_MESSAGE_VIEW_COLUMNS = tuple(
    _MESSAGE_VIEW_SOURCES[name] if name in _MESSAGE_VIEW_SOURCES else messages.c[name]
    for name in _MESSAGE_VIEW_FIELDS
)


def get_message_row(conn: Connection, campaign_id: str, message_pk: int) -> MessageView:
    """One message of the campaign as the messages API shows it, or 404."""
    row = conn.execute(
        select(*_MESSAGE_VIEW_COLUMNS).where(
            messages.c.campaign_id == campaign_id, messages.c.id == message_pk
        )
    ).first()
    if row is None:
        raise NotFound(f"No message {message_pk} in this campaign.", code="message_not_found")
    return _message_view(row)


def message_transitions(conn: Connection, message_pk: int) -> list[Row[Any]]:
    """Every status change of one message, oldest first."""
    return list(
        conn.execute(
            select(message_transitions_table)
            .where(message_transitions_table.c.message_pk == message_pk)
            .order_by(message_transitions_table.c.id)
        ).all()
    )


def _message_view(row: Row[Any]) -> MessageView:
    return MessageView(**dict(zip(_MESSAGE_VIEW_FIELDS, row, strict=True)))


def list_messages(
    conn: Connection,
    campaign_id: str,
    *,
    status: str | None,
    cursor: str | None,
    limit: int,
    email: str | None = None,
) -> MessagePage:
    """Per-recipient records in file order; ``next_cursor`` continues after the last one.
    ``email`` keeps the addresses that start with it (case-insensitive; a whole address
    finds that one)."""
    # Only the columns the page shows: the personalisation fields and the scheduling times
    # would be decoded for every row only to be thrown away.
    query = select(*_MESSAGE_VIEW_COLUMNS).where(messages.c.campaign_id == campaign_id)
    if status is not None:
        try:
            query = query.where(messages.c.status == MessageStatus(status))
        except ValueError:
            raise BadRequest(
                f"Unknown message status {status!r}.",
                code="invalid_status",
                details={"allowed": [s.value for s in MessageStatus]},
            ) from None
    if email:
        prefix = email.strip().lower()
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        # The range lets the (campaign_id, email_key) unique index find them; LIKE is exact.
        query = query.where(
            messages.c.email_key >= prefix,
            messages.c.email_key < prefix + "\U0010ffff",
            messages.c.email_key.like(escaped + "%", escape="\\"),
        )
    if cursor is not None:
        (after_id,) = decode_cursor(cursor, 1)
        query = query.where(messages.c.id > int(after_id))
    rows = conn.execute(query.order_by(messages.c.id).limit(limit + 1)).all()
    page = [_message_view(row) for row in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1][0]) if len(rows) > limit else None
    return MessagePage(messages=page, next_cursor=next_cursor)


def row_report(conn: Connection, campaign_id: str, batch_rows: int = 2000) -> Iterator[str]:
    """The invalid and duplicate rows as CSV text chunks (row, email, reason, detail)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["row", "email", "reason", "detail"])
    last_row = 0
    while True:
        batch = conn.execute(
            select(row_issues)
            .where(row_issues.c.campaign_id == campaign_id, row_issues.c.row_number > last_row)
            .order_by(row_issues.c.row_number)
            .limit(batch_rows)
        ).all()
        for issue in batch:
            writer.writerow(
                neutralised_row([issue.row_number, issue.email, issue.reason, issue.detail])
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(batch) < batch_rows:
            return
        last_row = batch[-1].row_number


def sample_row_issues(conn: Connection, campaign_id: str, *, limit: int) -> list[Row[Any]]:
    """The first few rows the file report names (row_number, email, reason, detail)."""
    return list(
        conn.execute(
            select(row_issues)
            .where(row_issues.c.campaign_id == campaign_id)
            .order_by(row_issues.c.row_number)
            .limit(limit)
        ).all()
    )


def first_message(conn: Connection, campaign_id: str) -> tuple[str, dict[str, str]] | None:
    """The address and row of the campaign's first message in file order (what a preview
    renders with), or None when it has none."""
    row = conn.execute(
        select(messages.c.email, messages.c.fields)
        .where(messages.c.campaign_id == campaign_id)
        .order_by(messages.c.id)
        .limit(1)
    ).first()
    if row is None:
        return None
    fields: dict[str, str] = json.loads(row.fields)
    return row.email, fields
