"""Use cases for tenants and keys: create, issue, revoke, list, authenticate."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from postroom.db.tables import api_keys, tenants
from postroom.errors import NotFound, Unauthorized
from postroom.ids import new_id
from postroom.oauth import BearerToken
from postroom.tenants.keys import issue_key, parse_key, secret_matches
from postroom.tenants.scopes import checked_scopes, granted_scopes, require, required_scope


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling the API: the tenant every resource is scoped to, and the key used
    (``oauth:<subject>`` for an OAuth bearer token)."""

    tenant_id: str
    key_id: str
    scopes: tuple[str, ...] | None = None  # None: every scope


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: str
    tenant_id: str
    created_at: datetime
    revoked_at: datetime | None
    scopes: list[str] | None = None  # None: every scope


def create_tenant(conn: Connection, name: str, now: datetime) -> tuple[str, str]:
    """Create a tenant and its first key; returns (tenant id, plaintext key)."""
    name = name.strip()
    if not name:
        raise ValueError("tenant name must not be empty")
    tenant_id = new_id("tn")
    conn.execute(insert(tenants).values(id=tenant_id, name=name, created_at=now))
    return tenant_id, create_key(conn, tenant_id, now)


def require_tenant(conn: Connection, tenant_id: str) -> None:
    if conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id)).first() is None:
        raise NotFound(f"No tenant {tenant_id!r}.", code="tenant_not_found")


def create_key(
    conn: Connection, tenant_id: str, now: datetime, scopes: list[str] | None = None
) -> str:
    """Issue another key for a tenant, holding ``scopes`` (every scope when None); the
    plaintext is returned once and never stored."""
    require_tenant(conn, tenant_id)
    key = issue_key()
    conn.execute(
        insert(api_keys).values(
            id=key.key_id,
            tenant_id=tenant_id,
            secret_hash=key.secret_hash,
            created_at=now,
            scopes=checked_scopes(scopes),
        )
    )
    return key.plaintext


def revoke_key(conn: Connection, key_id: str, now: datetime) -> str:
    """Revoke a key by its id (the part after ``pr_``); effective on the next request.
    Returns the key's tenant."""
    tenant_id = conn.execute(
        select(api_keys.c.tenant_id).where(api_keys.c.id == key_id)
    ).scalar_one_or_none()
    if tenant_id is None:
        raise NotFound(f"No API key {key_id!r}.", code="key_not_found")
    conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return str(tenant_id)


def list_keys(conn: Connection, tenant_id: str) -> list[KeyInfo]:
    rows = conn.execute(
        select(api_keys).where(api_keys.c.tenant_id == tenant_id).order_by(api_keys.c.created_at)
    )
    return [KeyInfo(r.id, r.tenant_id, r.created_at, r.revoked_at, r.scopes) for r in rows]


#: What the request in hand costs its key: set per request by the API edge for the routes it
#: rate-limits (``api/request_rate.py``), called once the key is known, on its connection.
request_meter: ContextVar[Callable[[Connection, Caller], None] | None] = ContextVar(
    "request_meter", default=None
)


def require_key(presented: str | None) -> str:
    """The presented key as given, or Unauthorized when the request carries none."""
    if not presented:
        raise Unauthorized(
            "Send your API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
            code="missing_api_key",
        )
    return presented


def authenticate(conn: Connection, presented: str | BearerToken | None) -> Caller:
    """Resolve a presented key (or an OAuth token already verified) to its tenant, or raise
    Unauthorized; Forbidden when it lacks the scope the request needs."""
    if isinstance(presented, BearerToken):
        caller = _token_caller(conn, presented)
    else:
        caller = _key_caller(conn, presented)
    # Charged once the caller is known: a request with a bad key or token costs nothing.
    meter = request_meter.get()
    if meter is not None:
        meter(conn, caller)
    return caller


def _key_caller(conn: Connection, presented: str | None) -> Caller:
    presented = require_key(presented)
    parsed = parse_key(presented)
    row = None
    if parsed is not None:
        row = conn.execute(select(api_keys).where(api_keys.c.id == parsed[0])).first()
    if parsed is None or row is None or not secret_matches(parsed[1], row.secret_hash):
        raise Unauthorized("The API key is not valid.", code="invalid_api_key")
    if row.revoked_at is not None:
        raise Unauthorized("The API key has been revoked.", code="revoked_api_key")
    require(row.scopes, required_scope.get())
    return _caller(row)


@dataclass(frozen=True, slots=True)
class RateOverrides:
    """A tenant's own sending limits (messages per second); None: the platform's default."""

    rate: float | None
    domains: dict[str, float] | None


def rate_overrides(conn: Connection, tenant_ids: Iterable[str]) -> dict[str, RateOverrides]:
    """The limits of these tenants that have any of their own."""
    rows = conn.execute(
        select(tenants.c.id, tenants.c.rate_limit, tenants.c.domain_rate_limits).where(
            tenants.c.id.in_(sorted(set(tenant_ids))),
            (tenants.c.rate_limit.is_not(None)) | (tenants.c.domain_rate_limits.is_not(None)),
        )
    )
    return {row.id: RateOverrides(row.rate_limit, row.domain_rate_limits) for row in rows}


def set_rate_overrides(conn: Connection, tenant_id: str, overrides: RateOverrides) -> None:
    """Replace a tenant's own limits (None for either goes back to the default)."""
    changed = conn.execute(
        update(tenants)
        .where(tenants.c.id == tenant_id)
        .values(rate_limit=overrides.rate, domain_rate_limits=overrides.domains)
    ).rowcount
    if not changed:
        raise NotFound(f"No tenant {tenant_id!r}.", code="tenant_not_found")


@dataclass(frozen=True, slots=True)
class TrackingDefaults:
    """Whether a tenant's campaigns track opens and clicks unless a campaign says otherwise."""

    opens: bool = True
    clicks: bool = True


def tracking_defaults(conn: Connection, tenant_id: str) -> TrackingDefaults:
    row = conn.execute(
        select(tenants.c.track_opens, tenants.c.track_clicks).where(tenants.c.id == tenant_id)
    ).first()
    if row is None:
        raise NotFound(f"No tenant {tenant_id!r}.", code="tenant_not_found")
    # NULL is the platform's default: on.
    return TrackingDefaults(row.track_opens is not False, row.track_clicks is not False)


def set_tracking_defaults(
    conn: Connection, tenant_id: str, *, opens: bool | None, clicks: bool | None
) -> TrackingDefaults:
    """Change either default (None leaves it as it is); returns the defaults now in force."""
    values = {
        name: value
        for name, value in (("track_opens", opens), ("track_clicks", clicks))
        if value is not None
    }
    if values:
        changed = conn.execute(
            update(tenants).where(tenants.c.id == tenant_id).values(**values)
        ).rowcount
        if not changed:
            raise NotFound(f"No tenant {tenant_id!r}.", code="tenant_not_found")
    return tracking_defaults(conn, tenant_id)


def caller_by_key_id(conn: Connection, key_id: str) -> Caller:
    """The tenant behind a key already checked once (a console session), or Unauthorized
    when the key has since been revoked or removed."""
    row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("The API key has been revoked.", code="revoked_api_key")
    return _caller(row)


#: The longest key id the audit log keeps (its key_id column).
KEY_ID_MAX = 40


def _token_caller(conn: Connection, token: BearerToken) -> Caller:
    found = conn.execute(select(tenants.c.id).where(tenants.c.id == token.tenant)).first()
    if found is None:
        raise Unauthorized("The bearer token names no tenant known here.", code="unknown_tenant")
    scopes = granted_scopes(token.scopes)
    require(scopes, required_scope.get(), credential="token")
    return Caller(tenant_id=token.tenant, key_id=oauth_key_id(token.subject), scopes=tuple(scopes))


def oauth_key_id(subject: str) -> str:
    """``oauth:<subject>`` names a token's caller in the audit log; a subject too long for the
    column keeps its start and gains a digest of the whole, so two stay apart."""
    key_id = f"oauth:{subject}"
    if len(key_id) <= KEY_ID_MAX:
        return key_id
    digest = hashlib.sha256(subject.encode()).hexdigest()[:12]
    return f"{key_id[: KEY_ID_MAX - 13]}~{digest}"


def _caller(row: Any) -> Caller:
    scopes = tuple(row.scopes) if row.scopes is not None else None
    return Caller(tenant_id=row.tenant_id, key_id=row.id, scopes=scopes)
