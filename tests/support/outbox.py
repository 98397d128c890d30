"""Reading the capture outbox of a test runtime."""

from __future__ import annotations

from pathlib import Path

from postroom.runtime import Runtime
from postroom.transports.capture import CaptureTransport


def outbox_dir(rt: Runtime) -> Path:
    return CaptureTransport.from_url(rt.settings.transport_url).directory


def outbox_count(rt: Runtime) -> int:
    directory = outbox_dir(rt)
    return len(list(directory.glob("*.eml"))) if directory.exists() else 0
