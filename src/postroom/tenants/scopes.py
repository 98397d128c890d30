"""What an API key may do. A key carries scopes; each API route needs one, named for the
request by the route's router (``api/scopes.py``) and checked where the key is checked, in
``authenticate``. ``admin`` holds every scope. A key made without a list holds them all."""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar

from postroom.errors import Forbidden, Unprocessable

SCOPES = (
    "campaigns:read",
    "campaigns:write",
    "templates:write",
    "suppressions:write",
    "webhooks:write",
    "admin",
)
ADMIN = "admin"

#: The scope the request in hand needs; set per request before its key is checked.
required_scope: ContextVar[str | None] = ContextVar("required_scope", default=None)


def checked_scopes(requested: Iterable[str] | None) -> list[str] | None:
    """A key's scope list, each known and once; None (every scope) when none is given."""
    if requested is None:
        return None
    wanted = sorted({scope.strip() for scope in requested if scope.strip()})
    unknown = [scope for scope in wanted if scope not in SCOPES]
    if unknown or not wanted:
        raise Unprocessable(
            f"Unknown scope {unknown[0]!r}." if unknown else "Give at least one scope.",
            code="unknown_scope",
            details={"unknown": unknown, "known": list(SCOPES)},
        )
    return wanted


def granted_scopes(claimed: Iterable[str]) -> list[str]:
    """Postroom's scopes among those an OAuth token grants; the issuer's others are ignored."""
    claimed = set(claimed)
    return [scope for scope in SCOPES if scope in claimed]


def require(held: list[str] | None, needed: str | None, *, credential: str = "API key") -> None:
    """Raise Forbidden naming the scope when a ``credential`` (an API key, or an OAuth token)
    holding ``held`` may not do ``needed``."""
    if needed is None or held is None or ADMIN in held or needed in held:
        return
    raise Forbidden(
        f"This {credential} lacks the scope {needed}.",
        code="missing_scope",
        details={"scope": needed, "held": held},
    )
