"""The request rate of each API key on /api/v1: a bucket per key (``api:<key id>``) in the
rate-limit table every process shares, charged when the key is checked, and the RateLimit
headers of draft-ietf-httpapi-ratelimit-headers-07 on every answer the charge was made for
(``Retry-After`` too on a 429).

The charge rides on the connection that checks the key: one upsert statement more (committed
at once by the reads' autocommit connection on PostgreSQL). On SQLite a read transaction
cannot safely become a write one, so from a read connection it takes a short write
transaction of its own (from a write connection it must not: that would wait on itself).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postroom.errors import RateLimited
from postroom.ratelimits.gcra import (
    ROUNDING_SECONDS,
    RequestBudget,
    latest_tat,
    request_budget,
)
from postroom.ratelimits.store import read_tat, take_one
from postroom.runtime import Runtime
from postroom.tenants.quotas import RequestRate, own_limits, request_rate
from postroom.tenants.service import Caller, request_meter

API_PREFIX = "/api/v1/"
#: How long a tenant's own rate is remembered by a process: a change made with ``postroom
#: tenant quotas`` reaches every API process within this time.
TENANT_RATE_TTL_SECONDS = 10.0


def bucket_key(key_id: str) -> str:
    return f"api:{key_id}"


class RequestRates:
    """Charges requests to their key's bucket; one per app."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._rates: dict[str, tuple[float, RequestRate]] = {}
        self._lock = threading.Lock()

    def charge(self, conn: Connection, caller: Caller) -> Charge | None:
        """Take one request from the caller's key; None when the tenant's keys have no
        limit. A refused request is not charged (its budget has a ``retry_after``)."""
        limit = self._rate_of(conn, caller.tenant_id)
        if limit.rate <= 0:
            return None
        now = self.rt.clock.now().timestamp()
        key = bucket_key(caller.key_id)
        if self.rt.db.is_sqlite and not conn.get_execution_options().get("postroom_write"):
            with self.rt.db.write() as write:
                tat = _take(write, key, now, limit)
                refused_at = read_tat(write, key) if tat is None else 0.0
        else:
            tat = _take(conn, key, now, limit)
            refused_at = read_tat(conn, key) if tat is None else 0.0
        granted = tat is not None
        budget = request_budget(
            tat if tat is not None else refused_at, now, limit.rate, limit.burst, granted=granted
        )
        return Charge(limit, budget)

    def _rate_of(self, conn: Connection, tenant_id: str) -> RequestRate:
        moment = time.monotonic()
        known = self._rates.get(tenant_id)
        if known is not None and known[0] > moment:
            return known[1]
        rate = request_rate(own_limits(conn, tenant_id), self.rt.settings)
        with self._lock:
            self._rates[tenant_id] = (moment + TENANT_RATE_TTL_SECONDS, rate)
        return rate


def _take(conn: Connection, key: str, now: float, limit: RequestRate) -> float | None:
    return take_one(
        conn,
        key,
        now=now,
        interval_seconds=1.0 / limit.rate,
        latest_tat=latest_tat(now, limit.rate, limit.burst),
    )


def retry_after_seconds(budget: RequestBudget) -> int:
    return max(1, math.ceil(budget.retry_after_seconds - ROUNDING_SECONDS))


def rate_limit_headers(budget: RequestBudget, rate: float) -> list[tuple[str, str]]:
    """The RateLimit fields of draft 07 (and ``Retry-After`` when the request was refused).
    The policy's window is the time the whole burst takes to refill."""
    window = max(1, math.ceil(budget.limit / rate - ROUNDING_SECONDS))
    headers = [
        ("RateLimit-Limit", str(budget.limit)),
        ("RateLimit-Remaining", str(budget.remaining)),
        ("RateLimit-Reset", str(math.ceil(budget.reset_seconds - ROUNDING_SECONDS))),
        ("RateLimit-Policy", f"{budget.limit};w={window}"),
    ]
    if budget.retry_after_seconds > 0:
        headers.append(("Retry-After", str(retry_after_seconds(budget))))
    return headers


@dataclass(frozen=True, slots=True)
class Charge:
    limit: RequestRate
    budget: RequestBudget

    @property
    def is_refused(self) -> bool:
        return self.budget.retry_after_seconds > 0


@dataclass
class Meter:
    """One request's charge, made when its key is checked and read when it is answered."""

    rates: RequestRates
    charge: Charge | None = None

    def __call__(self, conn: Connection, caller: Caller) -> None:
        if self.charge is None:  # a request is charged once, however often its key is checked
            self.charge = self.rates.charge(conn, caller)
        if self.charge is not None and self.charge.is_refused:
            wait = retry_after_seconds(self.charge.budget)
            raise RateLimited(
                f"Too many requests with this API key; try again in {wait} s.",
                details={
                    "limit": self.charge.limit.burst,
                    "per_second": self.charge.limit.rate,
                    "retry_after_seconds": wait,
                },
            )


class RequestRateLimit:
    """ASGI middleware: meters each /api/v1 request and puts the RateLimit headers on its
    answer."""

    def __init__(self, app: ASGIApp, *, rates: RequestRates) -> None:
        self.app = app
        self.rates = rates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        meter = Meter(self.rates)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and meter.charge is not None:
                headers = MutableHeaders(scope=message)
                charge = meter.charge
                for name, value in rate_limit_headers(charge.budget, charge.limit.rate):
                    headers[name] = value
            await send(message)

        token = request_meter.set(meter)
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            request_meter.reset(token)


def describe_rate_limit(document: dict[str, Any]) -> dict[str, Any]:
    """Make an OpenAPI ``document`` say that every /api/v1 route may answer 429, in place."""
    for path, operations in document.get("paths", {}).items():
        if not path.startswith(API_PREFIX):
            continue
        for operation in operations.values():
            operation.get("responses", {}).setdefault(
                "429",
                {
                    "description": "Too many requests with this API key (see Retry-After)",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
                    },
                },
            )
    return document
