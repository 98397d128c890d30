"""Builds the FastAPI application; in embedded mode it also runs the worker in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI

from postroom import __version__
from postroom.api import campaigns, files, public, templates, uploads
from postroom.api.errors import install_error_handlers
from postroom.runtime import Runtime

Background = Callable[[asyncio.Event], Awaitable[None]]


def create_app(rt: Runtime, *, background: Background | None = None) -> FastAPI:
    """The HTTP app. With ``background`` (the worker's ``run``), file processing and sending
    run in the same event loop and stop gracefully with it: in-flight SMTP transactions
    finish before the process exits."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
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
    install_error_handlers(app)
    for module in (public, uploads, templates, files, campaigns):
        app.include_router(module.router)
    return app
