"""Use cases of webhook endpoints: create (the secret shown once), list, change, enable and
disable, rotate the secret, delete, and read the delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Row

from postroom.errors import BadRequest, Conflict, NotFound, Unprocessable
from postroom.ids import new_id
from postroom.webhooks import store
from postroom.webhooks.catalogue import EVENT_TYPES, EVERY_TYPE
from postroom.webhooks.destinations import registration_problem
from postroom.webhooks.schemas import (
    DeliveryPage,
    DeliveryView,
    WebhookCreated,
    WebhookList,
    WebhookRequest,
    WebhookSecret,
    WebhookUpdate,
    WebhookView,
)
from postroom.webhooks.signature import new_secret

#: Enough for every system a tenant wants told; more is a mistake to report, not to serve.
MAX_ENDPOINTS_PER_TENANT = 20


def create(
    conn: Connection,
    tenant_id: str,
    body: WebhookRequest,
    now: datetime,
    *,
    allow_private: bool,
) -> WebhookCreated:
    url = _checked_url(body.url, allow_private=allow_private)
    event_types = _checked_events(body.events)
    if store.count_endpoints(conn, tenant_id) >= MAX_ENDPOINTS_PER_TENANT:
        raise Conflict(
            f"A tenant may have at most {MAX_ENDPOINTS_PER_TENANT} webhook endpoints; "
            "delete one first.",
            code="too_many_webhooks",
        )
    secret = new_secret()
    endpoint_id = new_id("whk")
    store.insert_endpoint(
        conn,
        {
            "id": endpoint_id,
            "tenant_id": tenant_id,
            "url": url,
            "description": body.description,
            "secret": secret,
            "status": "active",
            "created_at": now,
            "updated_at": now,
        },
        event_types,
    )
    return WebhookCreated(**get(conn, tenant_id, endpoint_id).model_dump(), secret=secret)


def get(conn: Connection, tenant_id: str, endpoint_id: str) -> WebhookView:
    endpoint = _endpoint(conn, tenant_id, endpoint_id)
    return _view(endpoint, store.subscriptions(conn, [endpoint.id])[endpoint.id])


def list_all(conn: Connection, tenant_id: str) -> WebhookList:
    endpoints = store.tenant_endpoints(conn, tenant_id)
    types = store.subscriptions(conn, [endpoint.id for endpoint in endpoints])
    return WebhookList(webhooks=[_view(endpoint, types[endpoint.id]) for endpoint in endpoints])


def change(
    conn: Connection,
    tenant_id: str,
    endpoint_id: str,
    body: WebhookUpdate,
    now: datetime,
    *,
    allow_private: bool,
) -> WebhookView:
    endpoint = _endpoint(conn, tenant_id, endpoint_id)
    values: dict[str, Any] = {"updated_at": now}
    if body.url is not None:
        values["url"] = _checked_url(body.url, allow_private=allow_private)
    if "description" in body.model_fields_set:
        values["description"] = body.description
    event_types = _checked_events(body.events) if body.events is not None else None
    if body.enabled is True:
        values.update(status="active", disabled_reason=None, failing_since=None)
    store.update_endpoint(conn, endpoint, values, event_types)
    if body.enabled is False:
        store.disable_endpoint(conn, endpoint.id, "disabled through the API", now)
    return get(conn, tenant_id, endpoint_id)


def rotate_secret(
    conn: Connection, tenant_id: str, endpoint_id: str, now: datetime
) -> WebhookSecret:
    """A new secret signs every delivery from now on, retries of older events too."""
    endpoint = _endpoint(conn, tenant_id, endpoint_id)
    secret = new_secret()
    store.update_endpoint(conn, endpoint, {"secret": secret, "updated_at": now}, None)
    return WebhookSecret(id=endpoint.id, secret=secret)


def remove(conn: Connection, tenant_id: str, endpoint_id: str) -> None:
    store.delete_endpoint(conn, _endpoint(conn, tenant_id, endpoint_id).id)


def deliveries(
    conn: Connection,
    tenant_id: str,
    endpoint_id: str,
    *,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> DeliveryPage:
    """The endpoint's delivery log, newest first; ``next_cursor`` continues to older ones."""
    endpoint = _endpoint(conn, tenant_id, endpoint_id)
    if status is not None and status not in ("pending", "delivered", "failed"):
        raise BadRequest(
            "status must be pending, delivered or failed.",
            code="invalid_status_filter",
            details={"status": status},
        )
    before = _decode_cursor(cursor) if cursor is not None else None
    rows = store.delivery_page(conn, endpoint.id, status=status, before_id=before, limit=limit + 1)
    page = [_delivery_view(row) for row in rows[:limit]]
    next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
    return DeliveryPage(deliveries=page, next_cursor=next_cursor)


def _endpoint(conn: Connection, tenant_id: str, endpoint_id: str) -> Row[Any]:
    endpoint = store.find_endpoint(conn, tenant_id, endpoint_id)
    if endpoint is None:
        raise NotFound("No such webhook endpoint.", code="webhook_not_found")
    return endpoint


def _checked_url(url: str, *, allow_private: bool) -> str:
    url = url.strip()
    parts = urlsplit(url)
    problem = None
    code = "invalid_webhook_url"
    if parts.scheme not in ("http", "https"):
        problem = "must be an http or https URL"
    elif not parts.hostname:
        problem = "has no host"
    elif parts.username is not None or parts.password is not None:
        problem = "must not carry a user name or password (sign-in is by the signature)"
    elif parts.fragment:
        problem = "must not have a #fragment"
    elif not allow_private:
        problem = registration_problem(parts.hostname or "")
        code = "private_webhook_address"
    if problem is not None:
        raise Unprocessable(f"The webhook URL {problem}.", code=code, details={"url": url})
    return url


def _checked_events(requested: list[str]) -> list[str]:
    """Known types only, each once; "*" stands for all and makes the others redundant."""
    wanted = sorted({name.strip() for name in requested})
    unknown = [name for name in wanted if name not in EVENT_TYPES and name != EVERY_TYPE]
    if unknown:
        raise Unprocessable(
            f"Unknown event type {unknown[0]!r}.",
            code="unknown_event_type",
            details={"unknown": unknown, "known": [*EVENT_TYPES, EVERY_TYPE]},
        )
    return [EVERY_TYPE] if EVERY_TYPE in wanted else wanted


def _decode_cursor(cursor: str) -> int:
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18:
        raise BadRequest("That cursor is not one this API gave out.", code="invalid_cursor")
    return int(cursor)


def _view(endpoint: Row[Any], event_types: list[str]) -> WebhookView:
    return WebhookView(
        id=endpoint.id,
        url=endpoint.url,
        events=event_types,
        description=endpoint.description,
        status=endpoint.status,
        disabled_reason=endpoint.disabled_reason,
        failing_since=endpoint.failing_since,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def _delivery_view(row: Row[Any]) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        event_id=row.event_uid,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )
