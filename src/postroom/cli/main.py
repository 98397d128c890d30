"""Entry point: ``postroom serve | api | worker | migrate`` here, and the command groups of
the other modules: ``tenant | key`` (``cli/tenants.py``), ``outbox | bounces``
(``cli/mailboxes.py``), ``analytics | retention`` (``cli/upkeep.py``), ``storage``
(``cli/storage.py``), ``template`` (``cli/template_preview.py``), and the remote ``send |
campaigns`` (``cli/remote.py``)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer

from postroom.cli import remote
from postroom.cli.admin import (
    HostOption,
    PortOption,
    admin_runtime,
    configure_cli_logging,
)
from postroom.cli.mailboxes import bounces_app, outbox_app
from postroom.cli.output import console, err_console, reports_errors
from postroom.cli.storage import storage_app
from postroom.cli.template_preview import template_app
from postroom.cli.tenants import key_app, tenant_app
from postroom.cli.upkeep import analytics_app, retention_app
from postroom.errors import ConfigError

# Server modules are imported inside the commands that use them: together they take about a
# second to import, which ``postroom send``, ``campaigns`` and ``--help`` need not wait for.
if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from postroom.runtime import Runtime
    from postroom.worker.loop import Worker

app = typer.Typer(help="Postroom: self-hostable email campaigns.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(key_app, name="key")
app.add_typer(outbox_app, name="outbox")
app.add_typer(template_app, name="template")
app.add_typer(bounces_app, name="bounces")
app.add_typer(analytics_app, name="analytics")
app.add_typer(storage_app, name="storage")
app.add_typer(retention_app, name="retention")
remote.register(app)


def _uvicorn_log_config(log_format: str) -> dict[str, Any] | None:
    """Uvicorn's own logging setup for text; none for json, so its loggers reach ours."""
    import uvicorn.config

    return uvicorn.config.LOGGING_CONFIG if log_format == "text" else None


@app.command()
@reports_errors
def serve(host: HostOption = "127.0.0.1", port: PortOption = 8025) -> None:
    """API, file processing, scheduling and sending in one process (the embedded mode)."""
    from postroom.worker.loop import Worker

    configure_cli_logging()
    rt = admin_runtime(migrate_sqlite=True)
    worker = Worker(rt)
    _banner(rt, host, port)
    _serve_http(rt, host, port, background=worker)


ProcessesOption = Annotated[
    int, typer.Option(min=1, help="API processes sharing the port; one per core is a good start.")
]


@app.command()
@reports_errors
def api(
    host: HostOption = "127.0.0.1", port: PortOption = 8025, processes: ProcessesOption = 1
) -> None:
    """The HTTP API alone; run ``postroom worker`` beside it (several of each may share one
    PostgreSQL database)."""
    configure_cli_logging()
    rt = admin_runtime()
    _banner(rt, host, port)
    if processes == 1:
        _serve_http(rt, host, port, background=None)
        return
    rt.close()  # each process builds its own from the same settings
    import uvicorn

    uvicorn.run(
        "postroom.api.app:app_from_settings",
        factory=True,
        workers=processes,
        host=host,
        port=port,
        log_level="info",
        log_config=_uvicorn_log_config(rt.settings.log_format),
        timeout_graceful_shutdown=30,
    )


def _serve_http(rt: Runtime, host: str, port: int, *, background: Worker | None) -> None:
    # Imported here: the web stack takes a second to import and most commands never need it.
    import uvicorn

    from postroom.api.app import create_app

    app = create_app(rt, background=background.run if background else None)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        log_config=_uvicorn_log_config(rt.settings.log_format),
        timeout_graceful_shutdown=30,
    )


MetricsPortOption = Annotated[
    int | None,
    typer.Option(
        min=0,
        max=65535,
        help="Serve Prometheus metrics on this port; 0 is off. Default: "
        "POSTROOM_WORKER_METRICS_PORT, else 0.",
    ),
]
MetricsHostOption = Annotated[str, typer.Option(help="Interface the metrics port listens on.")]
RolesOption = Annotated[
    str | None,
    typer.Option(
        help="What this worker does, a comma-separated part of files,send,schedule,webhooks,"
        "retention. Default: POSTROOM_WORKER_ROLES, else all of them.",
    ),
]


@app.command()
@reports_errors
def worker(
    metrics_port: MetricsPortOption = None,
    metrics_host: MetricsHostOption = "127.0.0.1",
    roles: RolesOption = None,
) -> None:
    """File processing, scheduling, sending, webhooks and retention, without the HTTP API."""
    from postroom.config import parse_worker_roles
    from postroom.worker.loop import Worker

    configure_cli_logging()
    try:
        chosen = None if roles is None else parse_worker_roles(roles)
    except ValueError as exc:
        raise ConfigError("--roles", str(exc)) from None
    rt = admin_runtime()
    if chosen is None:
        chosen = parse_worker_roles(rt.settings.worker_roles)  # checked by load_settings
    os.nice(rt.settings.worker_niceness)
    port = rt.settings.worker_metrics_port if metrics_port is None else metrics_port
    the_worker = Worker(rt, roles=chosen)
    metrics_server = _serve_worker_metrics(metrics_host, port, the_worker) if port else None
    try:
        asyncio.run(_run_worker(the_worker))
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()


def _serve_worker_metrics(host: str, port: int, worker: Worker) -> WSGIServer:
    from postroom.observability.metrics import serve_metrics

    try:
        server = serve_metrics(port, host, health=worker.liveness)
    except OSError as exc:
        raise ConfigError(
            "POSTROOM_WORKER_METRICS_PORT", f"cannot listen on {host}:{port}: {exc.strerror}"
        ) from None
    logging.getLogger(__name__).info(
        "metrics on http://%s:%d/metrics, liveness on /healthz", host, port
    )
    return server


async def _run_worker(worker: Worker) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await worker.run(stop)


@app.command()
@reports_errors
def migrate() -> None:
    """Apply database migrations (``serve`` does this itself on SQLite)."""
    from postroom.db.migrate import migrate as apply_migrations
    from postroom.runtime import build_runtime

    rt = build_runtime()
    rt.db.check_reachable()
    apply_migrations(rt.db)
    console.print(f"schema of {rt.db.safe_url} is up to date")


def _banner(rt: Runtime, host: str, port: int) -> None:
    from postroom.observability.redaction import redact

    url = f"http://{host}:{port}"
    console.print(f"[bold]Postroom[/bold] on [link={url}]{url}[/link]")
    console.print(f"  console   [link={url}/signin]{url}/signin[/link] (sign in with an API key)")
    console.print(f"  database  {rt.db.safe_url}")
    # Redacted: an SMTP URL carries the relay's password.
    console.print(f"  storage   {redact(rt.settings.storage_url)}")
    console.print(f"  transport {redact(rt.settings.transport_url)}")
    console.print(
        "  API key   run [bold].venv/bin/postroom tenant create NAME[/bold] in another terminal"
    )
    if urlsplit(rt.settings.base_url).port not in (None, port):
        err_console.print(
            f"[yellow]note:[/yellow] POSTROOM_BASE_URL is {rt.settings.base_url}; upload URLs "
            "point there"
        )
