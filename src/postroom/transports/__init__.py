"""Mail transports chosen by URL: ``smtp://`` for a relay, ``ses://`` for Amazon SES,
``capture://`` for a local outbox."""

from __future__ import annotations

from postroom.errors import ConfigError
from postroom.transports.base import (
    TRANSPORT_URL_VARIABLE,
    Accepted,
    Envelope,
    Outcome,
    Permanent,
    Transient,
    Transport,
)
from postroom.transports.capture import CaptureTransport
from postroom.transports.ses import SesTransport
from postroom.transports.smtp import SmtpTransport
from postroom.transports.smtp_settings import SmtpSettings

__all__ = [
    "Accepted",
    "CaptureTransport",
    "Envelope",
    "Outcome",
    "Permanent",
    "SesTransport",
    "SmtpTransport",
    "Transient",
    "Transport",
    "open_transport",
]


def open_transport(url: str, *, pool_size: int = 4, timeout_seconds: float = 30.0) -> Transport:
    """The transport a URL names; no connection is made until the first send.

    ``pool_size`` and ``timeout_seconds`` apply to SMTP unless the URL's ``pool`` or
    ``timeout`` parameters say otherwise, and to SES (threads and HTTP connections; connect
    and read timeouts). Raises ConfigError naming POSTROOM_TRANSPORT_URL
    for an unknown scheme or a malformed URL.
    """
    scheme, separator, _ = url.partition("://")
    scheme = scheme.lower()
    if separator and scheme == "smtp":
        return SmtpTransport(
            SmtpSettings.from_url(url, pool_size=pool_size, timeout_seconds=timeout_seconds)
        )
    if separator and scheme == "ses":
        return SesTransport.from_url(url, pool_size=pool_size, timeout_seconds=timeout_seconds)
    if separator and scheme == "capture":
        return CaptureTransport.from_url(url)
    # Only the scheme is echoed: the rest of the URL may hold a password.
    shown = repr(scheme) if separator else "none"
    raise ConfigError(
        TRANSPORT_URL_VARIABLE,
        f"unknown transport scheme {shown}; use smtp://host:port, ses://REGION or capture://DIR",
    )
