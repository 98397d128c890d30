"""The sending limits of a worker: the configured rates per transport, tenant and recipient
domain, and the names of the shared buckets that hold them (``ratelimits.store``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TenantRates:
    """A tenant's own limits, when it has any (``postroom tenant limits``)."""

    rate: float | None = None  # replaces the POSTROOM_TENANT_RATE_LIMIT default
    domains: dict[str, float] | None = None  # applies on top of the global domain limits


@dataclass(frozen=True, slots=True)
class SendingRates:
    """The configured limits, messages per second (0: none)."""

    transport: float
    tenant: float
    domains: dict[str, float]


def transport_bucket(name: str) -> str:
    return f"transport:{name}"


def tenant_bucket(tenant_id: str) -> str:
    return f"tenant:{tenant_id}"


def domain_bucket(domain: str, tenant_id: str | None = None) -> str:
    return f"tenant:{tenant_id}:domain:{domain}" if tenant_id else f"domain:{domain}"


def recipient_domain(address: str) -> str:
    return address.rpartition("@")[2].lower().rstrip(".")
