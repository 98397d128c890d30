"""``postroom outbox list | show`` (the capture transport's messages) and ``postroom bounces
serve | poll | list`` (bounces, complaints and unsubscribes by mail, in SMTP mode)."""

from __future__ import annotations

import signal
import threading
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from postroom.cli.admin import (
    HostOption,
    JsonOption,
    PortOption,
    admin_runtime,
    configure_cli_logging,
)
from postroom.cli.output import console, print_json, reports_errors
from postroom.errors import ConfigError

if TYPE_CHECKING:
    from postroom.runtime import Runtime

outbox_app = typer.Typer(help="The capture outbox (capture:// transport).", no_args_is_help=True)
bounces_app = typer.Typer(
    help="Bounces in SMTP mode (POSTROOM_BOUNCE_ADDRESS).", no_args_is_help=True
)


def _outbox_dir() -> Path:
    from postroom.runtime import build_runtime
    from postroom.transports.capture import outbox_directory

    directory = outbox_directory(build_runtime().settings.transport_url)
    if directory is None:
        raise ConfigError("POSTROOM_TRANSPORT_URL", "the outbox exists only for capture://DIR")
    return directory


@outbox_app.command("list")
@reports_errors
def outbox_list(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Messages the capture transport wrote, newest first."""
    from postroom.transports.outbox import list_outbox

    entries = list_outbox(_outbox_dir(), limit=limit)
    if as_json:
        print_json([asdict(entry) for entry in entries])
        return
    for e in entries:
        console.print(f"{e.message_id}  {e.recipient}  {e.subject}", highlight=False)


@outbox_app.command("show")
@reports_errors
def outbox_show(message_id: str) -> None:
    """Print one captured message exactly as it would have gone to the relay."""
    from postroom.transports.outbox import read_outbox_message

    data = read_outbox_message(_outbox_dir(), message_id)
    typer.echo(data.decode("utf-8", errors="replace"))


def _bounce_runtime() -> Runtime:
    rt = admin_runtime()
    if not rt.settings.bounce_address:
        raise ConfigError("POSTROOM_BOUNCE_ADDRESS", "is not set; bounces need a bounce address")
    return rt


@bounces_app.command("serve")
@reports_errors
def bounces_serve(host: HostOption = "127.0.0.1", port: PortOption = 2525) -> None:
    """Receive bounces, complaints and mailto unsubscribes over SMTP (point the bounce
    domain's MX here)."""
    from postroom.worker.bounce_listener import bounce_listener

    configure_cli_logging()
    rt = _bounce_runtime()
    listener = bounce_listener(rt, host, port)
    try:
        listener.start()
    except (OSError, RuntimeError) as exc:
        raise ConfigError("--port", f"cannot listen on {host}:{port}: {exc}") from None
    console.print(f"bounces for {rt.settings.bounce_address} on smtp://{host}:{port}")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        listener.stop()


@bounces_app.command("poll")
@reports_errors
def bounces_poll(
    imap: Annotated[str, typer.Option(help="imaps://user:password@host:993/INBOX")],
    interval: Annotated[float, typer.Option(min=1, help="Seconds between polls.")] = 60.0,
    once: Annotated[bool, typer.Option("--once", help="Poll once and exit.")] = False,
) -> None:
    """Read bounces from a mailbox over IMAP; each unseen message is recorded, then marked
    seen (it stays in the mailbox)."""
    from postroom.worker.bounce_mailbox import parse_mailbox_url, poll_forever, poll_once

    configure_cli_logging()
    mailbox = parse_mailbox_url(imap)
    rt = _bounce_runtime()
    if once:
        console.print(f"{poll_once(rt, mailbox)} message(s) recorded")
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    poll_forever(rt, mailbox, interval, stop)


@bounces_app.command("list")
@reports_errors
def bounces_list(
    outcome: Annotated[
        str | None, typer.Option(help="Only this outcome (unparseable, unmatched, …).")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many recent mails, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Counts of inbound mail by outcome, and the most recent mails."""
    from postroom.events.inbound_mail import inbound_counts, recent_inbound_mail

    rt = admin_runtime()
    with rt.db.read() as conn:
        counts = inbound_counts(conn)
        recent = recent_inbound_mail(conn, outcome=outcome, limit=limit)
    rows = [
        {
            "id": r.id,
            "received_at": r.received_at,
            "envelope_from": r.envelope_from,
            "envelope_to": r.envelope_to,
            "outcome": r.outcome,
            "detail": r.detail,
            "blob_key": r.blob_key,
        }
        for r in recent
    ]
    if as_json:
        print_json({"counts": counts, "recent": rows})
        return
    console.print("  ".join(f"{name} {count}" for name, count in counts.items()))
    for row in rows:
        kept = f"  kept {row['blob_key']}" if row["blob_key"] else ""
        console.print(
            f"{row['received_at']:%Y-%m-%d %H:%M:%S}  {row['outcome']:<11}  "
            f"{row['envelope_to']}  {row['detail'] or ''}{kept}",
            highlight=False,
        )
