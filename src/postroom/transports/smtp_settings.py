"""SMTP relay settings parsed from the transport URL.

URL: ``smtp://[user:password@]host[:port][?tls=...&pool=N&timeout=S&verify=false&helo=NAME]``

- ``tls``: ``starttls`` (required: fail if the relay does not offer it), ``implicit`` (TLS
  from the first byte, "SMTPS"), ``none`` (plain text, even if STARTTLS is offered), or
  ``opportunistic`` (upgrade with STARTTLS when offered, else plain text). Without ``tls``:
  ``implicit`` on port 465, ``opportunistic`` otherwise. An offered STARTTLS is used, and
  its certificate verified, so a relay with a bad certificate fails rather than silently
  falls back to plain text.
- port defaults to 465 for ``implicit``, 587 for ``starttls``, 25 otherwise.
- ``user``/``password`` (percent-decoded) enable AUTH after TLS is set up.
- ``pool``: open connections (default: the ``pool_size`` argument); ``timeout``: seconds per
  connect and per command (default: ``timeout_seconds``); ``verify=false`` skips certificate
  verification (test relays with self-signed certificates); ``helo``: the name sent in EHLO
  (default: this host's fully qualified name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import unquote, urlsplit

from postroom.transports.base import (
    reject_transport_url,
    transport_url_options,
)

# Relays cap messages per session and long sessions pile up state; reconnecting is cheap.
MESSAGES_PER_CONNECTION = 1000
# Relays drop idle sessions (Postfix after 300 s, NAT boxes silently); reopening after a
# shorter pause is cheaper than discovering a dead session through a timeout.
IDLE_SECONDS_BEFORE_REOPEN = 60.0
_QUERY_KEYS = ("tls", "pool", "timeout", "verify", "helo")
_TRUE_WORDS = ("true", "1", "yes", "on")
_FALSE_WORDS = ("false", "0", "no", "off")
_MAX_POOL_SIZE = 100


class TlsMode(StrEnum):
    OPPORTUNISTIC = "opportunistic"
    STARTTLS = "starttls"
    IMPLICIT = "implicit"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where and how to reach the relay; built from the transport URL."""

    host: str
    port: int
    tls: TlsMode = TlsMode.OPPORTUNISTIC
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    pool_size: int = 4
    timeout_seconds: float = 30.0
    verify_certificates: bool = True
    helo_name: str | None = None
    messages_per_connection: int = MESSAGES_PER_CONNECTION
    idle_seconds_before_reopen: float = IDLE_SECONDS_BEFORE_REOPEN

    @classmethod
    def from_url(cls, url: str, *, pool_size: int, timeout_seconds: float) -> SmtpSettings:
        """Parse an ``smtp://`` URL; raises ConfigError naming POSTROOM_TRANSPORT_URL.

        Query parameters win over the keyword defaults. Errors never echo the password.
        """
        parts = urlsplit(url)
        if parts.scheme != "smtp" or not parts.hostname:
            reject_transport_url("an SMTP URL looks like smtp://[user:password@]host[:port]")
        if parts.path not in ("", "/") or parts.fragment:
            reject_transport_url(
                "an SMTP URL has no path or fragment; options go in ?tls=...&pool=..."
            )
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0:
            reject_transport_url("the port must be a number from 1 to 65535")
        query = transport_url_options(parts.query, _QUERY_KEYS, "SMTP")
        tls = _parse_tls(query.get("tls"), port)
        username = unquote(parts.username) if parts.username else None
        if parts.password is not None and username is None:
            reject_transport_url("a password needs a user name: smtp://user:password@host")
        return cls(
            host=parts.hostname,
            port=port or _default_port(tls),
            tls=tls,
            username=username,
            password=unquote(parts.password) if parts.password is not None else None,
            pool_size=_parse_count("pool", query.get("pool"), pool_size),
            timeout_seconds=_parse_seconds(query.get("timeout"), timeout_seconds),
            verify_certificates=_parse_flag("verify", query.get("verify"), default=True),
            helo_name=_parse_helo(query.get("helo")),
        )


def _parse_tls(value: str | None, port: int | None) -> TlsMode:
    if value is None:
        return TlsMode.IMPLICIT if port == 465 else TlsMode.OPPORTUNISTIC
    try:
        return TlsMode(value.lower())
    except ValueError:
        reject_transport_url(f"tls must be one of {', '.join(TlsMode)} (got {value!r})")


def _default_port(tls: TlsMode) -> int:
    return {TlsMode.IMPLICIT: 465, TlsMode.STARTTLS: 587}.get(tls, 25)


def _parse_count(name: str, value: str | None, default: int) -> int:
    count = default
    if value is not None:
        try:
            count = int(value)
        except ValueError:
            reject_transport_url(f"{name} must be a whole number (got {value!r})")
    if not 1 <= count <= _MAX_POOL_SIZE:
        reject_transport_url(f"{name} must be between 1 and {_MAX_POOL_SIZE} (got {count})")
    return count


def _parse_seconds(value: str | None, default: float) -> float:
    seconds = default
    if value is not None:
        try:
            seconds = float(value)
        except ValueError:
            reject_transport_url(f"timeout must be a number of seconds (got {value!r})")
    if not 0 < seconds < float("inf"):
        reject_transport_url(f"timeout must be a positive number of seconds (got {seconds})")
    return seconds


def _parse_flag(name: str, value: str | None, *, default: bool) -> bool:
    if value is None:
        return default
    if value.lower() in _TRUE_WORDS:
        return True
    if value.lower() in _FALSE_WORDS:
        return False
    reject_transport_url(f"{name} must be true or false (got {value!r})")


def _parse_helo(value: str | None) -> str | None:
    if value is not None and (not value or not value.isprintable() or " " in value):
        reject_transport_url(f"helo must be a host name without spaces (got {value!r})")
    return value
