"""The console's session cookie and CSRF token: signed values, no I/O.

The cookie holds the API key id and when the session began, signed with the platform's
secret key. It does not hold the key itself: every request looks the key up again, so a
revoked key ends its sessions at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from postroom.signing import sign, verify

COOKIE_NAME = "postroom_session"
LIFETIME = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Session:
    key_id: str
    issued_at: int  # seconds since the epoch


def issue(secret: bytes, key_id: str, now: datetime) -> str:
    """The cookie value for a session that begins now."""
    issued = str(int(now.timestamp()))
    return f"{key_id}.{issued}.{sign(secret, 'console-session', key_id, issued)}"


def read(secret: bytes, value: str | None, now: datetime) -> Session | None:
    """The session in a cookie, or None when it is absent, forged or older than 12 hours."""
    if not value:
        return None
    parts = value.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    key_id, issued, signature = parts
    if not verify(secret, signature, "console-session", key_id, issued):
        return None
    if now.timestamp() - int(issued) > LIFETIME.total_seconds():
        return None
    return Session(key_id=key_id, issued_at=int(issued))


def csrf_token(secret: bytes, session: Session) -> str:
    """The token every form of this session carries: it changes with each sign-in."""
    return sign(secret, "console-csrf", session.key_id, str(session.issued_at))


def csrf_matches(secret: bytes, session: Session, presented: str | None) -> bool:
    return bool(presented) and verify(
        secret, presented or "", "console-csrf", session.key_id, str(session.issued_at)
    )
