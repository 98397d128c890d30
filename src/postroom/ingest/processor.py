"""File processing: stream a campaign's CSV, validate and dedupe it, write message rows in
batches. Each batch commits together with the resume point, so a worker that dies mid-file
is replaced by one that carries on where the last commit left off."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, insert, update

from postroom.campaigns import lifecycle, withheld
from postroom.campaigns.states import MessageStatus
from postroom.db.bulk import driver_value, existing_message_keys, insert_many
from postroom.db.notices import notify_workers
from postroom.db.tables import campaigns, messages, row_issues
from postroom.errors import BlobUnreadable, FileRejected
from postroom.files.csvreader import CsvLimits, RecipientFile, RowProblem, ValidRow
from postroom.files.service import get_file
from postroom.ingest.fields import FieldsEncoder
from postroom.ingest.seen import SeenAddresses
from postroom.observability.metrics import ingested_rows_total
from postroom.runtime import Runtime
from postroom.suppressions import store as suppression_store
from postroom.templates.builtins import missing_variables
from postroom.templates.service import get_template

log = logging.getLogger(__name__)


class ProcessingStopped(Exception):
    """The campaign was cancelled, or this worker lost its lease or was told to stop."""


@dataclass
class Batch:
    """Rows read since the last commit."""

    recipients: list[ValidRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    last_row: int = 0


class FileProcessor:
    """Processes one campaign's file at a time, for one worker."""

    def __init__(self, rt: Runtime, worker_id: str, stop: threading.Event) -> None:
        self.rt = rt
        self.worker_id = worker_id
        self.stop = stop

    def process_next(self) -> bool:
        """Claim one campaign awaiting processing and process it; False when there was none."""
        settings = self.rt.settings
        with self.rt.db.write() as conn:
            campaign = lifecycle.claim_campaign_for_processing(
                conn, self.worker_id, self.rt.clock.now(), settings.lease_seconds
            )
        if campaign is None:
            return False
        try:
            self._process(campaign)
        except ProcessingStopped:
            with self.rt.db.write() as conn:
                lifecycle.release_processing(conn, campaign.id, self.worker_id)
        except FileRejected as exc:
            self._fail(campaign.id, exc.code, exc.message)
        except BlobUnreadable as exc:
            log.error("campaign %s: its stored file cannot be read: %s", campaign.id, exc)
            self._fail(
                campaign.id,
                "file_unreadable",
                f"The stored file could not be read back. {exc.message}",
            )
        except Exception:
            log.exception("processing campaign %s failed", campaign.id)
            self._fail(
                campaign.id,
                "processing_error",
                "An internal error stopped file processing; the server log has the details.",
            )
        return True

    def _fail(self, campaign_id: str, code: str, message: str) -> None:
        with self.rt.db.write() as conn:
            lifecycle.fail_campaign(
                conn,
                campaign_id,
                self.worker_id,
                code=code,
                message=message,
                now=self.rt.clock.now(),
            )

    def _process(self, campaign: Row[Any]) -> None:
        with self.rt.db.read() as conn:
            blob_key = get_file(conn, campaign.tenant_id, campaign.file_id).blob_key
            variables = get_template(conn, campaign.tenant_id, campaign.template_id).variables
        settings = self.rt.settings
        limits = CsvLimits(
            max_columns=settings.csv_max_columns,
            max_field_bytes=settings.csv_max_field_bytes,
            max_file_bytes=settings.file_max_bytes,
        )
        with self.rt.blobs.open(blob_key) as stream:
            reader = RecipientFile(
                stream,
                delimiter=campaign.csv_delimiter,
                email_column=campaign.email_column,
                limits=limits,
            )
            reader.open()
            _check_variables(variables, reader.columns)
            self._read_rows(campaign, reader)
        with self.rt.db.write() as conn:
            lifecycle.finish_processing(conn, campaign, self.worker_id, self.rt.clock.now())
            notify_workers(conn, "sending")
        self.rt.wakeups.notify()

    def _read_rows(self, campaign: Row[Any], reader: RecipientFile) -> None:
        resume_after = campaign.rows_done
        batch_rows = self.rt.settings.ingest_batch_rows
        encoder = FieldsEncoder(reader.columns)
        # A resumed run cannot know what earlier runs wrote: every address is then looked up.
        seen = SeenAddresses() if resume_after == 0 else None
        batch = Batch()
        size = 0  # len(batch), kept by hand: this loop runs once per row of the file
        with self.rt.db.writes() as conn:
            for item in reader.checked_rows():
                if item.row <= resume_after:
                    continue
                if isinstance(item, ValidRow):
                    batch.recipients.append(item)
                else:
                    batch.problems.append(item)
                batch.last_row = item.row
                size += 1
                if size >= batch_rows:
                    self._commit(conn, campaign, reader, batch, encoder, seen)
                    batch, size = Batch(), 0
            self._commit(conn, campaign, reader, batch, encoder, seen)

    def _commit(
        self,
        conn: Connection,
        campaign: Row[Any],
        reader: RecipientFile,
        batch: Batch,
        encoder: FieldsEncoder,
        seen: SeenAddresses | None,
    ) -> None:
        """Write one batch and the resume point in one transaction on ``conn``; ``seen``
        holds every address this run wrote before (None: look every address up)."""
        if self.stop.is_set():
            raise ProcessingStopped
        now = self.rt.clock.now()
        with conn.begin():
            if not lifecycle.still_processing(conn, campaign.id, self.worker_id):
                raise ProcessingStopped
            fresh, duplicates = _dedupe(conn, campaign.id, batch.recipients, seen)
            _insert_messages(conn, campaign.id, fresh, encoder, now)
            _insert_issues(conn, campaign.id, batch.problems, duplicates)
            values: dict[str, Any] = {
                "valid_rows": campaigns.c.valid_rows + len(fresh),
                "queued_count": campaigns.c.queued_count + len(fresh),
                "invalid_rows": campaigns.c.invalid_rows + len(batch.problems),
                "duplicate_rows": campaigns.c.duplicate_rows + len(duplicates),
                "columns": reader.columns,
                "file_warnings": list(reader.warnings),
                "lease_expires_at": now + timedelta(seconds=self.rt.settings.lease_seconds),
            }
            if batch.last_row:
                values["rows_done"] = batch.last_row
            conn.execute(update(campaigns).where(campaigns.c.id == campaign.id).values(**values))
            self._suppress_erased(conn, campaign, fresh, now)
        ingested_rows_total.inc(len(batch.recipients) + len(batch.problems))

    def _suppress_erased(
        self, conn: Connection, campaign: Row[Any], fresh: list[ValidRow], now: datetime
    ) -> None:
        """Erased addresses are on the list as hashes, which the set-based check when the file
        is in cannot compare: each new address is hashed here, if the tenant erased any."""
        if not fresh or not suppression_store.has_erased(conn, campaign.tenant_id):
            return
        erased = suppression_store.erased_among(
            conn, campaign.tenant_id, (r.key for r in fresh), self.rt.secret_key
        )
        if erased:
            which = messages.c.email_key.in_(sorted(erased))
            withheld.suppress_queued(conn, campaign.id, which, now, "on the suppression list")


def _check_variables(variables: list[str], columns: list[str]) -> None:
    missing = missing_variables(variables, columns)
    if missing:
        raise FileRejected(
            "The template uses variables that are not columns of the file: "
            + ", ".join(missing)
            + ".",
            code="missing_columns",
            details={"missing": missing, "columns": columns},
        )


@dataclass(frozen=True, slots=True)
class Duplicate:
    recipient: ValidRow
    first_row: int


def _dedupe(
    conn: Connection, campaign_id: str, recipients: list[ValidRow], seen: SeenAddresses | None
) -> tuple[list[ValidRow], list[Duplicate]]:
    """Keep the first occurrence of each address: within the batch, then against the rows
    earlier batches wrote (the unique index on (campaign, email_key) backs this up). Only
    addresses ``seen`` may have had are looked up in the database."""
    first_rows: dict[str, int] = {}
    fresh: list[ValidRow] = []
    duplicates: list[Duplicate] = []
    for recipient in recipients:
        first = first_rows.get(recipient.key)
        if first is None:
            first_rows[recipient.key] = recipient.row
            fresh.append(recipient)
        else:
            duplicates.append(Duplicate(recipient, first))
    if not fresh:
        return fresh, duplicates
    keys = [r.key for r in fresh]
    if seen is not None:
        asked = seen.which_may_have(keys)
        seen.add_all(keys)  # were this batch not written, processing stops with an error
    else:
        asked = keys
    earlier = existing_message_keys(conn, campaign_id, asked)
    if earlier:
        duplicates += [Duplicate(r, earlier[r.key]) for r in fresh if r.key in earlier]
        fresh = [r for r in fresh if r.key not in earlier]
    return fresh, duplicates


MESSAGE_COLUMNS = (
    "campaign_id",
    "row_number",
    "email",
    "email_key",
    "fields",
    "status",
    "attempts",
    "available_at",
    "updated_at",
)


def _insert_messages(
    conn: Connection,
    campaign_id: str,
    recipients: list[ValidRow],
    encoder: FieldsEncoder,
    now: datetime,
) -> None:
    at = driver_value(conn, messages.c.available_at, now)
    queued = MessageStatus.QUEUED.value
    encode = encoder.encode
    rows = [
        (campaign_id, row, email, key, encode(cells), queued, 0, at, at)
        for row, email, key, cells in recipients
    ]
    insert_many(conn, messages, MESSAGE_COLUMNS, rows)


def _insert_issues(
    conn: Connection, campaign_id: str, problems: list[RowProblem], duplicates: list[Duplicate]
) -> None:
    issues = [
        {
            "campaign_id": campaign_id,
            "row_number": p.row,
            "email": p.email,
            "reason": p.reason,
            "detail": p.detail,
        }
        for p in problems
    ] + [
        {
            "campaign_id": campaign_id,
            "row_number": d.recipient.row,
            "email": d.recipient.email,
            "reason": "duplicate",
            "detail": f"same address as row {d.first_row}",
        }
        for d in duplicates
    ]
    if issues:
        conn.execute(insert(row_issues), issues)
