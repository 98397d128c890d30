"""``erase_recipient``: one address out of everything a tenant keeps (messages, events,
webhook deliveries, file reports, recipient files, kept bounce mail, the audit log, campaign
metadata, the capture outbox), while it stays on the suppression list as a hash, so that it
is never mailed again."""

from __future__ import annotations

import logging
import re
from typing import Any

from postroom.erasure import store
from postroom.erasure.schemas import ErasureCounts, ErasureReport
from postroom.files.addresses import Address
from postroom.files.record_removal import address_pattern, erase_from_blob
from postroom.ids import new_id
from postroom.runtime import Runtime
from postroom.suppressions.erased import ERASED_PREFIX, erased_key
from postroom.transports.capture import outbox_directory
from postroom.transports.outbox import delete_outbox_message

log = logging.getLogger(__name__)

#: How much of the hash the report shows (and the audit log records).
SHOWN_HASH_CHARS = len(ERASED_PREFIX) + 16


def erased_label(rt: Runtime, tenant_id: str, address: Address) -> str:
    """What the report and the audit log call the address: the start of its hash."""
    return erased_key(rt.secret_key, tenant_id, address.key)[:SHOWN_HASH_CHARS]


def erase_recipient(rt: Runtime, tenant_id: str, address: Address) -> ErasureReport:
    """Erase a checked address. The rows change in one transaction (the address is on the
    list as a hash when it commits); the blobs are rewritten or deleted after it, since no
    transaction is held across blob I/O. Calling it again is safe and finishes blob work an
    interrupted call left undone; with nothing left, it reports zeros."""
    hashed = erased_key(rt.secret_key, tenant_id, address.key)
    spellings = [address.email, address.key, address.ascii_email or ""]
    pattern = address_pattern(spellings)
    now = rt.clock.now()
    with rt.db.write() as conn:
        suppressions = store.hash_suppression(conn, tenant_id, address.key, hashed, now)
        pks, stopped = store.erase_messages(conn, tenant_id, address.key, hashed, pattern, now)
        event_ids = store.erase_events(conn, tenant_id, pks, hashed, spellings, pattern)
        deliveries = store.drop_webhook_deliveries(conn, tenant_id, event_ids, now)
        issues = store.erase_row_issues(conn, tenant_id, spellings, pattern)
        kept_mail = store.release_bounce_mail(conn, pks, rt.settings.bounce_address, pattern)
        audit_entries = store.erase_audit_targets(conn, tenant_id, spellings, pattern)
        metadata = store.erase_campaign_metadata(conn, tenant_id, spellings, pattern)
        payloads = store.erase_webhook_payloads(conn, tenant_id, spellings, pattern)
        links = store.erase_link_urls(conn, tenant_id, spellings, pattern)
        sources = store.source_files(conn, tenant_id)
        sent_ids = store.sent_message_ids(conn, pks)
    for key in kept_mail:
        rt.blobs.delete(key)
    outbox = _erase_from_outbox(rt, sent_ids)
    rewritten = sum(_rewrite_file(rt, tenant_id, file, pattern) for file in sources)
    if stopped:
        rt.wakeups.notify()  # campaigns whose last waiting message this was can complete
    counts = ErasureCounts(
        messages=len(pks),
        messages_stopped=stopped,
        events=len(event_ids),
        webhook_deliveries=deliveries,
        row_issues=issues,
        files_rewritten=rewritten,
        bounce_mail=len(kept_mail),
        suppressions=suppressions,
        audit_entries=audit_entries,
        campaign_metadata=metadata,
        webhook_payloads=payloads,
        outbox_messages=outbox,
        link_urls=links,
    )
    label = hashed[:SHOWN_HASH_CHARS]
    log.info("erased %s for tenant %s: %s", label, tenant_id, counts.model_dump())
    return ErasureReport(erased=label, counts=counts)


def _erase_from_outbox(rt: Runtime, message_ids: list[str]) -> int:
    """With the capture transport (the embedded default) every message sent is kept in the
    outbox as it would have gone: those of the erased address go."""
    directory = outbox_directory(rt.settings.transport_url)
    if directory is None:
        return 0
    return sum(delete_outbox_message(directory, message_id) for message_id in message_ids)


def _rewrite_file(rt: Runtime, tenant_id: str, file: Any, pattern: re.Pattern[str]) -> bool:
    """The file's CSV without the address's rows, under a new key the file row then names;
    the old blob goes."""
    new_key = f"t/{tenant_id}/files/{file.id}-{new_id('rev')}.csv"
    if not erase_from_blob(rt.blobs, file.blob_key, new_key, pattern, rt.settings.file_max_bytes):
        return False
    with rt.db.write() as conn:
        moved = store.replace_file_blob(
            conn, file.id, file.blob_key, new_key, rt.blobs.size(new_key)
        )
    rt.blobs.delete(file.blob_key if moved else new_key)
    return moved
