"""Realistic recipient lists: ~1 % invalid, ~1 % duplicates differing in case, some IDN
domains, six columns. Deterministic for a given size."""

from __future__ import annotations

import random
from pathlib import Path

DOMAINS = [
    "gmail.com",
    "outlook.com",
    "yahoo.co.uk",
    "example.org",
    "mail.example.net",
    "company.io",
    "posteo.de",
    "fastmail.fm",
]
IDN_DOMAINS = ["bücher.de", "münchen.example", "españa.example"]
FIRST = ["Ana", "Bo", "Carla", "Dmitri", "Émile", "Fatima", "Günther", "Hiro", "Ingrid", "José"]
# Local parts stay ASCII, as nearly all real ones are; names and IDN domains do not.
HANDLES = ["ana", "bo", "carla", "dmitri", "emile", "fatima", "gunther", "hiro", "ingrid", "jose"]
LAST = ["Silva", "Nakamura", "O'Brien", "Müller", "Novak", "Smith", "Dubois", "Kowalski"]
CITIES = ["Lisbon", "Zürich", "São Paulo", "Kraków", "New York", "Tōkyō"]
PLANS = ["free", "pro", "team", "enterprise"]
HEADER = "email,first_name,last_name,city,plan,signup_date\r\n"
#: The subject of the send benchmark (and of its ceiling's pre-rendered messages).
SEND_SUBJECT = "News for {{ first_name }} ({{ plan }})"


def write_recipients(path: Path, rows: int, *, seed: int = 7) -> dict[str, int]:
    """Write ``rows`` data rows to ``path``; returns how many are invalid and duplicated."""
    rng = random.Random(seed)
    invalid = duplicates = 0
    earlier: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER)
        lines = []
        for i in range(rows):
            roll = rng.random()
            if roll < 0.01:
                email = f"broken{i}.example.com"  # no @: invalid
                invalid += 1
            elif roll < 0.02 and earlier:
                email = rng.choice(earlier).upper()
                duplicates += 1
            else:
                domain = rng.choice(IDN_DOMAINS) if roll > 0.995 else rng.choice(DOMAINS)
                email = f"{rng.choice(HANDLES)}.{i}@{domain}"
                if len(earlier) < 1000:
                    earlier.append(email)
            lines.append(
                f"{email},{rng.choice(FIRST)},{rng.choice(LAST)},{rng.choice(CITIES)},"
                f"{rng.choice(PLANS)},2026-{1 + i % 12:02d}-{1 + i % 28:02d}\r\n"
            )
            if len(lines) == 10_000:
                out.write("".join(lines))
                lines = []
        out.write("".join(lines))
    return {"rows": rows, "invalid": invalid, "duplicates": duplicates}


def realistic_template(kilobytes: int = 8) -> str:
    """An HTML newsletter of about ``kilobytes`` with five personalised fields."""
    block = (
        '<tr><td style="padding:16px;font-family:Arial,sans-serif;color:#333">'
        '<h2 style="margin:0 0 8px">News for {{ first_name }} in {{ city }}</h2>'
        "<p>Your <b>{{ plan }}</b> plan renews soon. Since {{ signup_date }} you have been "
        "with us, {{ first_name }} {{ last_name }}; here is what is new this month, with links "
        'to <a href="https://example.com/features">the features</a> and '
        '<a href="https://example.com/account">your account</a>.</p></td></tr>\n'
    )
    head = (
        '<!doctype html><html><head><meta charset="utf-8"><style>body{margin:0}'
        '.x{color:#999}</style></head><body><table width="100%">\n'
    )
    body = head
    while len(body) < kilobytes * 1024:
        body += block
    return body + '</table><p class="x">Sent to {{ email }}</p></body></html>\n'
