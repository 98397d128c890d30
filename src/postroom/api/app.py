"""Builds the FastAPI application; in embedded mode it also runs the worker in-process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
from fastapi import FastAPI

from postroom import __version__
from postroom.api import (
    analytics,
    audit,
    campaigns,
    files,
    health,
    metrics,
    public,
    quotas,
    recipients,
    suppressions,
    system,
    templates,
    tracking,
    uploads,
    webhooks,
)
from postroom.api.audit import AuditTrail
from postroom.api.errors import describe_request_errors, install_error_handlers
from postroom.api.request_body import BodyLimits, RequestBodyGuard
from postroom.api.request_ids import RequestIds
from postroom.api.request_rate import RequestRateLimit, RequestRates, describe_rate_limit
from postroom.api.security_headers import SecurityHeaders
from postroom.console.pages import mount as mount_console
from postroom.db.engine import POOL_SIZE
from postroom.delivery.breaker import breaker_name
from postroom.events.sns import SnsVerifier, fetch_from_sns
from postroom.observability.logs import configure_logging
from postroom.observability.metrics import MessageGauges
from postroom.runtime import Runtime, build_runtime

log = logging.getLogger(__name__)

Background = Callable[[asyncio.Event], Awaitable[None]]


def create_app(rt: Runtime, *, background: Background | None = None) -> FastAPI:
    """The HTTP app. With ``background`` (the worker's ``run``), file processing and sending
    run in the same event loop and stop gracefully with it: in-flight SMTP transactions
    finish before the process exits."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Endpoints run in anyio's thread pool, 40 threads by default: more than the database
        # pool holds, so a burst would make the pool open and close connections (a new
        # PostgreSQL backend each) and the threads fight over the GIL. Queue in the pool
        # instead.
        anyio.to_thread.current_default_thread_limiter().total_tokens = POOL_SIZE
        if background is None:
            yield
            return
        stop = asyncio.Event()
        task = asyncio.ensure_future(background(stop))
        try:
            yield
        finally:
            stop.set()
            await task

    app = FastAPI(
        title="Postroom",
        version=__version__,
        description="Self-hostable email campaigns: templates and CSV in, tracked mail out.",
        lifespan=lifespan,
    )
    app.state.runtime = rt
    app.state.readiness = health.Readiness(rt)
    app.state.sns_verifier = _sns_verifier(rt)
    transport_url = rt.settings.transport_url
    app.state.message_gauges = MessageGauges(
        rt.db, urlsplit(transport_url).scheme, breaker=breaker_name(transport_url)
    )
    install_error_handlers(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            describe_rate_limit(describe_request_errors(FastAPI.openapi(app)))
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(RequestRateLimit, rates=RequestRates(rt))
    app.add_middleware(AuditTrail, rt=rt)
    app.add_middleware(metrics.RequestMetrics)
    # The middleware added last runs first: the security headers (and request ids) also go
    # on the answers the body guard gives itself (413, 408).
    settings = rt.settings
    limits = BodyLimits(
        max_bytes=settings.request_max_bytes,
        timeout_seconds=settings.request_body_timeout_seconds,
        min_bytes_per_second=settings.request_body_min_bytes_per_second,
    )
    app.add_middleware(RequestBodyGuard, limits=limits, has_own_limit=has_own_body_limit)
    own_scripts = [
        p for p in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if p
    ]
    app.add_middleware(SecurityHeaders, own_script_paths=own_scripts)
    app.add_middleware(RequestIds)
    for module in (
        health,
        public,
        tracking,
        metrics,
        uploads,
        templates,
        files,
        campaigns,
        analytics,
        suppressions,
        recipients,
        webhooks,
        audit,
        system,
        quotas,
    ):
        app.include_router(module.router)
    mount_console(app)
    return app


def has_own_body_limit(method: str, path: str) -> bool:
    """Bodies sized by their own rules: presigned uploads (the signed limit) and the console's
    new-campaign form (the template and file limits)."""
    return (method == "PUT" and path.startswith("/uploads/")) or (
        method == "POST" and path == "/campaigns/new"
    )


def app_from_settings() -> FastAPI:
    """The API alone, with a runtime built from the POSTROOM_* settings: what each process of
    ``postroom api --processes N`` serves."""
    rt = build_runtime()
    # A spawned process starts with logging unconfigured.
    configure_logging(rt.settings.log_format)
    return create_app(rt)


def _sns_verifier(rt: Runtime) -> SnsVerifier | None:
    if rt.settings.sns_verify_signatures:
        return SnsVerifier(lambda url: (rt.sns_fetch or fetch_from_sns)(url))
    log.warning(
        "POSTROOM_SNS_VERIFY_SIGNATURES is off: POST /hooks/ses believes ANY caller. "
        "Use this for local development only."
    )
    return None
