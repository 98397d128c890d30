"""Takes an address out of text and JSON values, leaving the rest as it was (erasure, and
late reports about a recipient already erased)."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[erased]"


def redact_text(text: str | None, pattern: re.Pattern[str]) -> str | None:
    if text is None:
        return None
    return pattern.sub(REDACTED, text)


def redact_json(value: Any, pattern: re.Pattern[str]) -> Any:
    """A copy of ``value`` (dicts, lists, strings…) with the address replaced in every string,
    keys included."""
    if isinstance(value, str):
        return pattern.sub(REDACTED, value)
    if isinstance(value, dict):
        return {redact_json(k, pattern): redact_json(v, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_json(item, pattern) for item in value]
    return value
