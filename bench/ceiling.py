"""One ceiling client: ``python -m bench.ceiling PORT COUNT POOL``. Renders and composes COUNT
messages first, then times only sending them over POOL pooled connections; prints seconds."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime

from bench.data import SEND_SUBJECT, realistic_template
from postroom.delivery.compose import CampaignComposer, Mailbox
from postroom.templates.sandbox import compile_template
from postroom.transports import open_transport
from postroom.transports.base import Envelope


def envelopes(count: int) -> list[Envelope]:
    template = compile_template(realistic_template(8), SEND_SUBJECT)
    composer = CampaignComposer(Mailbox("bench@example.com", "Bench"))
    out = []
    for i in range(count):
        fields = {
            "first_name": "Ana",
            "last_name": "Silva",
            "city": "Lisbon",
            "plan": "pro",
            "signup_date": "2026-01-01",
            "email": f"r{i}@example.com",
        }
        content = template.render(fields)
        data = composer.compose(
            Mailbox(fields["email"]),
            subject=content.subject,
            html=content.html,
            text=content.text,
            message_id=f"{i}.ceiling@example.com",
            date=datetime.now(UTC),
        )
        out.append(Envelope("bench@example.com", fields["email"], data, f"{i}.ceiling"))
    return out


async def send_all(port: int, pool: int, batch: list[Envelope]) -> float:
    transport = open_transport(f"smtp://127.0.0.1:{port}?tls=none", pool_size=pool)
    started = time.perf_counter()
    for start in range(0, len(batch), 500):
        await transport.send_many(batch[start : start + 500])
    seconds = time.perf_counter() - started
    await transport.close()
    return seconds


def main() -> None:
    port, count, pool = (int(a) for a in sys.argv[1:4])
    print(asyncio.run(send_all(port, pool, envelopes(count))))


if __name__ == "__main__":
    main()
