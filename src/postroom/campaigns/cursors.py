"""Opaque pagination cursors: clients pass them back untouched."""

from __future__ import annotations

import base64
import json
from typing import Any

from postroom.errors import BadRequest


def encode_cursor(*values: Any) -> str:
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != arity:
        raise BadRequest("The cursor is not one this API handed out.", code="invalid_cursor")
    return values
