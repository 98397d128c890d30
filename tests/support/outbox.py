"""Reading the capture outbox of a test runtime."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from postroom.runtime import Runtime


def outbox_dir(rt: Runtime) -> Path:
    parts = urlsplit(rt.settings.transport_url)
    return Path(parts.netloc + parts.path)


def outbox_count(rt: Runtime) -> int:
    directory = outbox_dir(rt)
    return len(list(directory.glob("*.eml"))) if directory.exists() else 0
