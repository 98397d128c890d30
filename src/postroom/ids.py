"""Identifiers Postroom hands out: a readable prefix and enough randomness to be unguessable."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """E.g. ``cmp_3f9a...``: 80 random bits, hex, so ids sort and compare as plain strings."""
    return f"{prefix}_{secrets.token_hex(10)}"
