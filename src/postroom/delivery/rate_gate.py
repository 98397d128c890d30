"""The rate gate of one claim: how many messages the shared buckets let this worker claim
now, which of the claimed ones must wait for their recipient domain, and what the buckets
hold afterwards. Everything happens inside the claim's transaction, with the buckets locked,
so the limits hold across every worker process."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from postroom.delivery.sending_rates import (
    SendingRates,
    TenantRates,
    domain_bucket,
    recipient_domain,
    tenant_bucket,
    transport_bucket,
)
from postroom.ratelimits import store as ratelimit_store
from postroom.ratelimits.gcra import UNLIMITED, Allowance, after_granting, allowance


@dataclass
class Postponed:
    """Claimed messages whose recipient domain is at its limit: back to the queue until then."""

    message_pks: list[int]
    available_at: float  # epoch seconds


@dataclass
class RateGate:
    conn: Connection
    rates: SendingRates
    transport: str
    tenants: dict[str, TenantRates]
    now: float
    tats: dict[str, float] = field(default_factory=dict)
    rates_by_key: dict[str, float] = field(default_factory=dict)
    #: When nothing may be claimed: seconds until the transport or tenants allow some.
    wait_seconds: float = 0.0

    @classmethod
    def open(
        cls,
        conn: Connection,
        rates: SendingRates,
        transport: str,
        tenants: dict[str, TenantRates],
        now: datetime,
    ) -> RateGate:
        gate = cls(conn, rates, transport, tenants, now.timestamp())
        key = transport_bucket(transport)
        gate.rates_by_key[key] = rates.transport
        for tenant_id in sorted(tenants):
            rate = gate.tenant_rate(tenant_id)
            if rate > 0:
                gate.rates_by_key[tenant_bucket(tenant_id)] = rate
        limited = [k for k, rate in gate.rates_by_key.items() if rate > 0]
        gate.tats.update(ratelimit_store.lock_buckets(conn, limited))
        if rates.transport <= 0:
            # No rate to keep: only a throttling pause could hold the transport back, and
            # reading it needs no lock (nothing is charged to it).
            gate.tats[key] = ratelimit_store.read_tat(conn, key)
        return gate

    def tenant_rate(self, tenant_id: str) -> float:
        own = self.tenants.get(tenant_id, TenantRates()).rate
        return self.rates.tenant if own is None else own

    def transport_room(self) -> int:
        allowed = self._allowance(transport_bucket(self.transport))
        if allowed.count == 0:
            self.wait_seconds = allowed.wait_seconds
        return allowed.count

    def tenant_room(self, tenant_id: str) -> int:
        key = tenant_bucket(tenant_id)
        if key not in self.rates_by_key:
            return UNLIMITED
        allowed = self._allowance(key)
        if allowed.count == 0:
            self.wait_seconds = max(self.wait_seconds, allowed.wait_seconds)
        return allowed.count

    def grant(self, claimed: Sequence[Row[Any]], tenant_of: dict[str, str]) -> Postponed | None:
        """Check the claimed messages against their domains' limits, then charge the buckets
        for the ones that go now. Returns the ones that must wait, if any."""
        keep, wait = self._by_domain(claimed, tenant_of)
        self._charge(transport_bucket(self.transport), len(keep))
        for tenant_id, count in Counter(tenant_of[r.campaign_id] for r in keep).items():
            self._charge(tenant_bucket(tenant_id), count)
        ratelimit_store.save_buckets(
            self.conn,
            {key: self.tats[key] for key, rate in self.rates_by_key.items() if rate > 0},
        )
        if not wait:
            return None
        return Postponed([r.id for r, _ in wait], max(at for _, at in wait))

    def _by_domain(
        self, claimed: Sequence[Row[Any]], tenant_of: dict[str, str]
    ) -> tuple[list[Row[Any]], list[tuple[Row[Any], float]]]:
        keys_of: dict[int, list[str]] = {}
        for row in claimed:
            domain = recipient_domain(row.email)
            tenant_id = tenant_of[row.campaign_id]
            keys = []
            if self.rates.domains.get(domain, 0) > 0:
                keys.append(domain_bucket(domain))
                self.rates_by_key[domain_bucket(domain)] = self.rates.domains[domain]
            own = (self.tenants.get(tenant_id, TenantRates()).domains or {}).get(domain, 0)
            if own > 0:
                keys.append(domain_bucket(domain, tenant_id))
                self.rates_by_key[domain_bucket(domain, tenant_id)] = own
            if keys:
                keys_of[row.id] = keys
        if not keys_of:
            return list(claimed), []
        wanted = {key for keys in keys_of.values() for key in keys}
        self.tats.update(ratelimit_store.lock_buckets(self.conn, wanted))
        keep: list[Row[Any]] = []
        wait: list[tuple[Row[Any], float]] = []
        for row in claimed:
            keys = keys_of.get(row.id, [])
            blocked = [self._allowance(key) for key in keys]
            if all(allowed.count > 0 for allowed in blocked):
                for key in keys:
                    self._charge(key, 1)
                keep.append(row)
            else:
                later = max(allowed.wait_seconds for allowed in blocked)
                wait.append((row, self.now + later))
        return keep, wait

    def _allowance(self, key: str) -> Allowance:
        return allowance(self.tats.get(key, 0.0), self.now, self.rates_by_key.get(key, 0.0))

    def _charge(self, key: str, count: int) -> None:
        if key in self.tats:
            self.tats[key] = after_granting(
                self.tats[key], self.now, self.rates_by_key.get(key, 0.0), count
            )


def throttle_pause(conn: Connection, transport: str, now: datetime, seconds: float) -> None:
    """The provider said we send too fast: every worker holds off this transport for a
    moment (the transport bucket's time is pushed back)."""
    key = transport_bucket(transport)
    tat = ratelimit_store.lock_buckets(conn, [key])[key]
    ratelimit_store.save_buckets(conn, {key: max(tat, now.timestamp() + seconds)})
