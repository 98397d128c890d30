"""The capture outbox on disk: its file layout, and listing and reading what was captured.

Each captured message is ``<stem>.eml`` (the bytes exactly as a relay would receive them)
plus ``<stem>.json`` ({"sender", "recipient", "message_id", "captured_at"}). The ``.json``
is written last, so a message is listed only once both files are complete.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from postroom.errors import NotFound

MESSAGE_SUFFIX = ".eml"
ENVELOPE_SUFFIX = ".json"
# Leaves room for the suffix and a temporary-file prefix under the usual 255-byte name limit.
_MAX_STEM_CHARS = 200
_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._@+=-]")


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One captured message as the outbox listing shows it."""

    message_id: str
    sender: str
    recipient: str
    subject: str | None
    captured_at: datetime
    path: Path


def file_stem(message_id: str) -> str:
    """The file name (without suffix) a message is captured under.

    Angle brackets are dropped and anything outside a conservative set becomes "_", so a
    hostile Message-ID cannot escape the directory or hide as a dotfile. Applying it to a
    stem returns the stem, so users may pass either form to ``read_outbox_message``.
    """
    stem = _UNSAFE_FILENAME_CHARS.sub("_", message_id.strip().strip("<>"))
    stem = stem[:_MAX_STEM_CHARS]
    if not stem or stem.startswith("."):
        stem = "_" + stem
    return stem


def list_outbox(directory: Path, *, limit: int | None = None) -> list[OutboxEntry]:
    """Captured messages, newest first; at most ``limit`` of them. A missing directory is empty.

    Reads every envelope file, which is fine for a development outbox of thousands.
    """
    if not directory.is_dir():
        return []
    entries = [
        entry
        for envelope_path in directory.glob("*" + ENVELOPE_SUFFIX)
        if not envelope_path.name.startswith(".")
        and (entry := _read_entry(envelope_path)) is not None
    ]
    entries.sort(key=lambda entry: (entry.captured_at, entry.message_id), reverse=True)
    return entries if limit is None else entries[:limit]


def delete_outbox_message(directory: Path, message_id: str) -> bool:
    """Remove one captured message and its envelope; False when neither was there."""
    stem = file_stem(message_id)
    found = False
    for suffix in (MESSAGE_SUFFIX, ENVELOPE_SUFFIX):
        try:
            (directory / (stem + suffix)).unlink()
            found = True
        except FileNotFoundError:
            pass
    return found


def read_outbox_message(directory: Path, message_id: str) -> bytes:
    """The captured bytes of one message; raises NotFound (``message_not_found``) if absent."""
    path = directory / (file_stem(message_id) + MESSAGE_SUFFIX)
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(
            f"No captured message with id {message_id!r}.",
            code="message_not_found",
            details={"message_id": message_id},
        ) from None


def _read_entry(envelope_path: Path) -> OutboxEntry | None:
    # A hand-edited or foreign file should not make the whole listing fail, so it is skipped.
    message_path = envelope_path.with_suffix(MESSAGE_SUFFIX)
    try:
        envelope: dict[str, Any] = json.loads(envelope_path.read_text(encoding="utf-8"))
        captured_at = datetime.fromisoformat(envelope["captured_at"])
        if captured_at.tzinfo is None:
            captured_at = captured_at.replace(tzinfo=UTC)  # naive and aware must sort together
        subject = _read_subject(message_path)
        return OutboxEntry(
            message_id=str(envelope["message_id"]),
            sender=str(envelope["sender"]),
            recipient=str(envelope["recipient"]),
            subject=subject,
            captured_at=captured_at,
            path=message_path,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_subject(message_path: Path) -> str | None:
    with message_path.open("rb") as message_file:
        headers = email.parser.BytesHeaderParser(policy=email.policy.default).parse(message_file)
    subject = headers.get("subject")
    return None if subject is None else str(subject)
