"""Takes an address out of text and JSON values, leaving the rest as it was (erasure, and
late reports about a recipient already erased)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

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


def redact_url(url: str, spellings: Iterable[str]) -> str:
    """``url`` with the address taken out wherever it stands whole: a path segment, a query
    value or the fragment, plain or percent-encoded (``?e=ann%40example.com``), as a
    personalised link carries it. In a URL the address follows ``=`` or ``/``, which an
    address may itself contain, so the text pattern cannot tell where it starts; the URL's
    own parts do."""
    wanted = {spelling.lower() for spelling in spellings if spelling}

    def clean(piece: str) -> str:
        return REDACTED if unquote(piece).lower() in wanted else piece

    parts = urlsplit(url)
    path = "/".join(clean(segment) for segment in parts.path.split("/"))
    query = "&".join(
        name + separator + clean(value) if separator else clean(name)
        for name, separator, value in (item.partition("=") for item in parts.query.split("&"))
    )
    return urlunsplit((parts.scheme, parts.netloc, path, query, clean(parts.fragment)))
