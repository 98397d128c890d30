"""Sending rates as people write them in settings: ``20/s``, ``600/m``, ``3600/h``, and
per-domain lists like ``gmail.com=20/s,yahoo.com=600/m``."""

from __future__ import annotations

import re

_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*([smh]))?\s*")
_PER = {"s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_rate(text: str) -> float:
    """Messages per second from ``20``, ``20/s``, ``600/m`` or ``3600/h``; 0 means no limit.
    Raises ValueError with a readable message."""
    match = _RATE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a rate; write e.g. 20/s, 600/m or 3600/h")
    return float(match.group(1)) / _PER[match.group(2)]


def parse_domain_rates(text: str) -> dict[str, float]:
    """``gmail.com=20/s, yahoo.com=600/m`` as ``{domain: messages per second}``."""
    rates: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        domain, separator, rate = item.partition("=")
        domain = domain.strip().lower().rstrip(".")
        if not separator or not domain or "@" in domain:
            raise ValueError(f"{item!r} is not DOMAIN=RATE, e.g. gmail.com=20/s")
        rates[domain] = parse_rate(rate)
    return rates
