"""``postroom bounces poll``: read bounces from a mailbox over IMAP (the stdlib imaplib) when
the bounce address's mail is delivered to an ordinary mailbox instead of to ``bounces serve``.
Each unseen message is fetched without marking it (BODY.PEEK), recorded, and only then flagged
\\Seen; it stays in the mailbox. A message that cannot be recorded stays unseen for the next
poll."""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import threading
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr
from typing import Any
from urllib.parse import unquote, urlsplit

from postroom.errors import ConfigError
from postroom.events.inbound_mail import receive_inbound_mail
from postroom.runtime import Runtime

log = logging.getLogger(__name__)
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To")


@dataclass(frozen=True, slots=True)
class Mailbox:
    tls: bool
    host: str
    port: int
    user: str
    password: str
    folder: str


def parse_mailbox_url(url: str) -> Mailbox:
    """``imaps://user:pass@host:993/INBOX`` (or ``imap://`` without TLS, port 143)."""
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname or parts.username is None:
        raise ConfigError("--imap", "expected imaps://user:password@host[:port]/FOLDER")
    tls = parts.scheme == "imaps"
    try:
        port = parts.port or (993 if tls else 143)
    except ValueError:
        raise ConfigError("--imap", f"bad port in {parts.netloc!r}") from None
    return Mailbox(
        tls=tls,
        host=parts.hostname,
        port=port,
        user=unquote(parts.username),
        password=unquote(parts.password or ""),
        folder=unquote(parts.path.lstrip("/")) or "INBOX",
    )


def poll_once(rt: Runtime, mailbox: Mailbox, *, timeout: float = 60.0) -> int:
    """Record every unseen message of the mailbox; returns how many were handled."""
    client: imaplib.IMAP4 = (
        imaplib.IMAP4_SSL(mailbox.host, mailbox.port, timeout=timeout)
        if mailbox.tls
        else imaplib.IMAP4(mailbox.host, mailbox.port, timeout=timeout)
    )
    handled = 0
    try:
        client.login(mailbox.user, mailbox.password)
        _ok(client.select(_quoted(mailbox.folder)), "SELECT")
        found = _ok(client.uid("SEARCH", "UNSEEN"), "SEARCH")
        for uid in (found[0] or b"").split():
            raw = _message_bytes(_ok(client.uid("FETCH", uid.decode(), "(BODY.PEEK[])"), "FETCH"))
            if raw is None:
                continue
            _record(rt, raw)
            _ok(client.uid("STORE", uid.decode(), "+FLAGS", "(\\Seen)"), "STORE")
            handled += 1
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            client.logout()
    return handled


def poll_forever(rt: Runtime, mailbox: Mailbox, interval: float, stop: threading.Event) -> None:
    """Poll every ``interval`` seconds until ``stop`` is set; a failed poll is logged and
    retried at the next turn."""
    while not stop.is_set():
        try:
            count = poll_once(rt, mailbox)
            if count:
                log.info("IMAP poll of %s: %d message(s) recorded", mailbox.host, count)
        except (OSError, imaplib.IMAP4.error) as exc:
            log.error("IMAP poll of %s failed: %s", mailbox.host, exc)
        stop.wait(interval)


def _record(rt: Runtime, raw: bytes) -> None:
    headers = BytesHeaderParser().parsebytes(raw)
    values = [str(v) for name in RECIPIENT_HEADERS for v in headers.get_all(name) or []]
    recipients = list(dict.fromkeys(addr for _, addr in getaddresses(values) if "@" in addr))
    envelope_from = parseaddr(str(headers.get("Return-Path") or ""))[1]
    result = receive_inbound_mail(rt, envelope_from=envelope_from, envelope_to=recipients, raw=raw)
    log.info("IMAP mail to %s: %s (%s)", ", ".join(recipients), result.outcome, result.detail)


def _ok(response: tuple[str, Any], command: str) -> list[Any]:
    typ, data = response
    if typ != "OK":
        raise imaplib.IMAP4.error(f"{command} failed: {data!r}")
    return list(data)


def _message_bytes(data: list[Any]) -> bytes | None:
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return None


def _quoted(folder: str) -> str:
    return (
        folder
        if re.fullmatch(r"[A-Za-z0-9._/-]+", folder)
        else '"' + folder.replace('"', '\\"') + '"'
    )
