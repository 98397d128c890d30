"""Entry point: ``postroom serve | api | worker | migrate | tenant | key | outbox |
template | bounces | analytics | storage | retention`` (storage in ``cli/storage.py``), and
the remote ``send | campaigns`` (``cli/remote.py``)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer

from postroom.cli import remote
from postroom.cli.output import console, err_console, print_json, reports_errors
from postroom.cli.storage import storage_app
from postroom.cli.template_preview import template_app
from postroom.errors import ConfigError, NotFound

# Server modules are imported inside the commands that use them: together they take about a
# second to import, which ``postroom send``, ``campaigns`` and ``--help`` need not wait for.
if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from sqlalchemy import Connection

    from postroom.runtime import Runtime
    from postroom.worker.loop import Worker

app = typer.Typer(help="Postroom: self-hostable email campaigns.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants.", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
outbox_app = typer.Typer(help="The capture outbox (capture:// transport).", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(key_app, name="key")
app.add_typer(outbox_app, name="outbox")
app.add_typer(template_app, name="template")
bounces_app = typer.Typer(
    help="Bounces in SMTP mode (POSTROOM_BOUNCE_ADDRESS).", no_args_is_help=True
)
app.add_typer(bounces_app, name="bounces")
analytics_app = typer.Typer(help="Analytics rollups.", no_args_is_help=True)
app.add_typer(analytics_app, name="analytics")
app.add_typer(storage_app, name="storage")
retention_app = typer.Typer(
    help="Retention of recipient files and personalisation.", no_args_is_help=True
)
app.add_typer(retention_app, name="retention")
remote.register(app)

HostOption = Annotated[str, typer.Option(help="Interface to listen on.")]
PortOption = Annotated[int, typer.Option(help="Port to listen on.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _runtime(*, migrate_sqlite: bool = False) -> Runtime:
    """Build the runtime and make sure the database is reachable and its schema current."""
    from postroom.db.migrate import migrate as apply_migrations
    from postroom.db.migrate import pending_migrations
    from postroom.runtime import build_runtime

    rt = build_runtime()
    rt.db.check_reachable()
    if migrate_sqlite and rt.db.is_sqlite:
        apply_migrations(rt.db)
    elif pending_migrations(rt.db):
        raise ConfigError(
            "POSTROOM_DATABASE_URL",
            f"the schema of {rt.db.safe_url} is not up to date; run 'postroom migrate'",
        )
    return rt


def _audit(
    rt: Runtime, conn: Connection, tenant_id: str, action: str, target: dict[str, Any]
) -> None:
    """An admin command's entry in the tenant's audit log (actor admin, no key)."""
    import getpass
    import socket

    from postroom.audit import log as audit

    audit.record(
        conn,
        tenant_id=tenant_id,
        at=rt.clock.now(),
        actor="admin",
        action=f"postroom {action}",
        target=target,
        client_address=f"cli:{getpass.getuser()}@{socket.gethostname()}",
    )


def _logging() -> None:
    """Log to stderr in the format POSTROOM_LOG_FORMAT names."""
    # Alembic logs the set-up of its plug-ins at INFO when first imported; import it while
    # there is no handler yet, so that noise never reaches stderr.
    import postroom.db.migrate  # noqa: F401
    from postroom.config import load_settings
    from postroom.observability.logs import configure_logging

    configure_logging(load_settings().log_format)


def _uvicorn_log_config(log_format: str) -> dict[str, Any] | None:
    """Uvicorn's own logging setup for text; none for json, so its loggers reach ours."""
    import uvicorn.config

    return uvicorn.config.LOGGING_CONFIG if log_format == "text" else None


@app.command()
@reports_errors
def serve(host: HostOption = "127.0.0.1", port: PortOption = 8025) -> None:
    """API, file processing, scheduling and sending in one process (the embedded mode)."""
    from postroom.worker.loop import Worker

    _logging()
    rt = _runtime(migrate_sqlite=True)
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
    _logging()
    rt = _runtime()
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

    _logging()
    try:
        chosen = None if roles is None else parse_worker_roles(roles)
    except ValueError as exc:
        raise ConfigError("--roles", str(exc)) from None
    rt = _runtime()
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


@tenant_app.command("create")
@reports_errors
def tenant_create(name: str, as_json: JsonOption = False) -> None:
    """Create a tenant and print its first API key (shown once, stored only as a hash)."""
    from postroom.tenants import service as tenants

    rt = _runtime(migrate_sqlite=True)
    with rt.db.write() as conn:
        tenant_id, key = tenants.create_tenant(conn, name, rt.clock.now())
        _audit(rt, conn, tenant_id, "tenant create", {"name": name})
    if as_json:
        print_json({"tenant_id": tenant_id, "api_key": key})
        return
    console.print(f"tenant  {tenant_id}")
    console.print(f"api key {key}", highlight=False)
    console.print("[dim]Keep the key: it is shown once.[/dim]")


@tenant_app.command("limits")
@reports_errors
def tenant_limits(
    tenant: str,
    rate: Annotated[
        str | None,
        typer.Option(help="This tenant's sending rate, e.g. 50/s or 3000/m (0: no limit)."),
    ] = None,
    domain: Annotated[
        list[str] | None,
        typer.Option(help="A per-domain limit for this tenant, e.g. gmail.com=5/s; repeatable."),
    ] = None,
    reset: Annotated[bool, typer.Option(help="Go back to the platform's defaults.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Show or set TENANT's own sending limits. They replace POSTROOM_TENANT_RATE_LIMIT for
    this tenant; its domain limits apply on top of POSTROOM_DOMAIN_RATE_LIMITS."""
    from postroom.rates import parse_domain_rates, parse_rate
    from postroom.tenants import service as tenants

    rt = _runtime()
    with rt.db.write() as conn:
        current = tenants.rate_overrides(conn, [tenant]).get(tenant)
        if reset or rate is not None or domain:
            try:
                updated = tenants.RateOverrides(
                    rate=None if reset or rate is None else parse_rate(rate),
                    domains=None if reset or not domain else parse_domain_rates(",".join(domain)),
                )
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from None
            if not reset and current is not None:
                updated = tenants.RateOverrides(
                    rate=updated.rate if rate is not None else current.rate,
                    domains=updated.domains if domain else current.domains,
                )
            tenants.set_rate_overrides(conn, tenant, updated)
            _audit(rt, conn, tenant, "tenant limits", {"rate": rate, "domain": domain or []})
            current = updated
        else:
            tenants.require_tenant(conn, tenant)
    own_rate = current.rate if current else None
    own_domains = (current.domains if current else None) or {}
    if as_json:
        print_json(
            {
                "tenant_id": tenant,
                "rate_per_second": own_rate,
                "domain_rates_per_second": own_domains,
            }
        )
        return
    default = "the default (POSTROOM_TENANT_RATE_LIMIT)"
    console.print(f"rate     {f'{own_rate}/s' if own_rate is not None else default}")
    for name, value in sorted(own_domains.items()):
        console.print(f"domain   {name} {value}/s")


QuotaOption = Annotated[
    str | None, typer.Option(help="A number (0: no limit), or 'default' for the platform's.")
]


@tenant_app.command("quotas")
@reports_errors
def tenant_quotas(
    tenant: str,
    file_bytes: Annotated[
        str | None,
        typer.Option(help="The largest recipient file in bytes (at most POSTROOM_FILE_MAX_BYTES)."),
    ] = None,
    rows_per_campaign: QuotaOption = None,
    messages_per_day: QuotaOption = None,
    api_rate: Annotated[
        str | None,
        typer.Option(help="Requests per API key, e.g. 20/s or 600/m (0: none), or 'default'."),
    ] = None,
    api_burst: QuotaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show or set TENANT's quotas and API request rate; each replaces its POSTROOM_QUOTA_*
    or POSTROOM_API_RATE_* default for this tenant. A new request rate reaches every API
    process within 10 seconds."""
    from postroom.tenants import quotas

    rt = _runtime()
    changes = {
        "file_bytes": _quota_number("--file-bytes", file_bytes),
        "rows_per_campaign": _quota_number("--rows-per-campaign", rows_per_campaign),
        "messages_per_day": _quota_number("--messages-per-day", messages_per_day),
        "api_rate": _quota_rate(api_rate),
        "api_burst": _quota_number("--api-burst", api_burst),
    }
    if (
        isinstance(changes["file_bytes"], int)
        and changes["file_bytes"] > rt.settings.file_max_bytes
    ):
        raise typer.BadParameter(
            f"--file-bytes may be at most POSTROOM_FILE_MAX_BYTES ({rt.settings.file_max_bytes})"
        )
    if changes["api_burst"] == 0:
        raise typer.BadParameter("--api-burst must be at least 1")
    with rt.db.write() as conn:
        own = quotas.own_limits(conn, tenant)
        if any(value is not None for value in changes.values()):
            own = quotas.changed_limits(own, **changes)
            quotas.set_own_limits(conn, tenant, own)
            given = {name: value for name, value in changes.items() if value is not None}
            _audit(rt, conn, tenant, "tenant quotas", given)
    in_force = quotas.quotas(own, rt.settings)
    rate = quotas.request_rate(own, rt.settings)
    shown = {
        "tenant_id": tenant,
        "file_bytes": in_force.file_bytes,
        "rows_per_campaign": in_force.rows_per_campaign,
        "messages_per_day": in_force.messages_per_day,
        "api_rate_per_second": rate.rate,
        "api_burst": rate.burst,
        "own": asdict(own),
    }
    if as_json:
        print_json(shown)
        return
    lines = (
        ("file_bytes", in_force.file_bytes),
        ("rows_per_campaign", in_force.rows_per_campaign),
        ("messages_per_day", in_force.messages_per_day),
        ("api_rate", f"{rate.rate:g}/s" if rate.rate else 0),
        ("api_burst", rate.burst),
    )
    for name, value in lines:
        origin = "" if getattr(own, name) is not None else "  [dim](default)[/dim]"
        console.print(f"{name:<18} {value or 'no limit'}{origin}", highlight=False)


def _quota_number(option: str, value: str | None) -> int | str | None:
    if value is None or value == "default":
        return value
    if not (value.isascii() and value.isdigit()):
        raise typer.BadParameter(f"{option} takes a whole number or 'default', not {value!r}")
    return int(value)


def _quota_rate(value: str | None) -> float | str | None:
    from postroom.rates import parse_rate

    if value is None or value == "default":
        return value
    try:
        return parse_rate(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@tenant_app.command("tracking")
@reports_errors
def tenant_tracking(
    tenant: str,
    opens: Annotated[
        bool | None, typer.Option("--opens/--no-opens", help="Track opens by default.")
    ] = None,
    clicks: Annotated[
        bool | None, typer.Option("--clicks/--no-clicks", help="Track clicks by default.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show or set whether TENANT's campaigns track opens and clicks when a campaign does not
    say (its create request's track_opens and track_clicks win). Both are on at first."""
    from postroom.tenants import service as tenants

    rt = _runtime()
    with rt.db.write() as conn:
        defaults = tenants.set_tracking_defaults(conn, tenant, opens=opens, clicks=clicks)
        if opens is not None or clicks is not None:
            _audit(rt, conn, tenant, "tenant tracking", {"opens": opens, "clicks": clicks})
    if as_json:
        print_json(
            {"tenant_id": tenant, "track_opens": defaults.opens, "track_clicks": defaults.clicks}
        )
        return
    console.print(f"opens    {'tracked' if defaults.opens else 'not tracked'}")
    console.print(f"clicks   {'tracked' if defaults.clicks else 'not tracked'}")


@key_app.command("create")
@reports_errors
def key_create(
    tenant: str,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="A scope the key holds (campaigns:read, campaigns:write, templates:write, "
            "suppressions:write, webhooks:write, admin); repeatable. Default: every scope."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Issue another API key for TENANT."""
    from postroom.tenants import service as tenants

    rt = _runtime()
    with rt.db.write() as conn:
        key = tenants.create_key(conn, tenant, rt.clock.now(), scopes=scope)
        _audit(rt, conn, tenant, "key create", {"key_id": key.split("_")[1], "scopes": scope})
    if as_json:
        print_json({"tenant_id": tenant, "api_key": key, "scopes": scope})
    else:
        console.print(key, highlight=False)


@key_app.command("revoke")
@reports_errors
def key_revoke(key_id: str) -> None:
    """Revoke a key by its id (the part between ``pr_`` and the next ``_``)."""
    from postroom.tenants import service as tenants

    rt = _runtime()
    with rt.db.write() as conn:
        tenant_id = tenants.revoke_key(conn, key_id, rt.clock.now())
        _audit(rt, conn, tenant_id, "key revoke", {"key_id": key_id})
    console.print(f"revoked {key_id}")


@analytics_app.command("rebuild")
@reports_errors
def analytics_rebuild(campaign_id: str) -> None:
    """Recompute a campaign's analytics rollups from its stored events."""
    from sqlalchemy import select

    from postroom.analytics import rollups
    from postroom.db.tables import campaigns

    rt = _runtime()
    with rt.db.write() as conn:
        if (
            conn.execute(select(campaigns.c.id).where(campaigns.c.id == campaign_id)).first()
            is None
        ):
            raise NotFound(f"no campaign {campaign_id}", code="campaign_not_found")
        counted = rollups.rebuild(conn, campaign_id)
    console.print(f"rebuilt analytics of {campaign_id} from {counted} events")


@retention_app.command("run")
@reports_errors
def retention_run(as_json: JsonOption = False) -> None:
    """Apply the retention settings now (workers also do so about hourly) and say what went."""
    from postroom.retention.service import run_retention

    rt = _runtime()
    report = run_retention(rt)
    if as_json:
        print_json(asdict(report))
        return
    settings = rt.settings
    console.print(
        f"deleted the CSV of {report.sources_deleted} recipient files "
        f"(POSTROOM_SOURCE_RETENTION_DAYS={settings.source_retention_days:g})"
    )
    console.print(
        f"purged the personalisation of {report.messages_purged} messages, "
        f"{report.campaigns_purged} campaigns done "
        f"(POSTROOM_PERSONALISATION_RETENTION_DAYS={settings.personalisation_retention_days:g})"
    )


@key_app.command("list")
@reports_errors
def key_list(tenant: str, as_json: JsonOption = False) -> None:
    """List TENANT's keys (ids only; secrets are never stored)."""
    from postroom.tenants import service as tenants

    rt = _runtime()
    with rt.db.read() as conn:
        keys = tenants.list_keys(conn, tenant)
    rows = [
        {
            "key_id": k.key_id,
            "created_at": k.created_at,
            "revoked_at": k.revoked_at,
            "scopes": k.scopes,
        }
        for k in keys
    ]
    if as_json:
        print_json(rows)
        return
    for k in keys:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
        scopes = ",".join(k.scopes) if k.scopes is not None else "every scope"
        console.print(
            f"{k.key_id}  created {k.created_at:%Y-%m-%d %H:%M}  {state}  {scopes}",
            highlight=False,
        )


def _outbox_dir() -> Path:
    from postroom.runtime import build_runtime
    from postroom.transports.capture import CaptureTransport

    url = build_runtime().settings.transport_url
    if not url.startswith("capture://"):
        raise ConfigError("POSTROOM_TRANSPORT_URL", "the outbox exists only for capture://DIR")
    return CaptureTransport.from_url(url).directory


@outbox_app.command("list")
@reports_errors
def outbox_list(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Messages the capture transport wrote, newest first."""
    from postroom.transports.outbox import list_outbox

    entries = list_outbox(_outbox_dir(), limit=limit)
    if as_json:
        print_json([asdict(entry) for entry in entries])
        return
    for e in entries:
        console.print(f"{e.message_id}  {e.recipient}  {e.subject}", highlight=False)


@outbox_app.command("show")
@reports_errors
def outbox_show(message_id: str) -> None:
    """Print one captured message exactly as it would have gone to the relay."""
    from postroom.transports.outbox import read_outbox_message

    data = read_outbox_message(_outbox_dir(), message_id)
    typer.echo(data.decode("utf-8", errors="replace"))


def _bounce_runtime() -> Runtime:
    rt = _runtime()
    if not rt.settings.bounce_address:
        raise ConfigError("POSTROOM_BOUNCE_ADDRESS", "is not set; bounces need a bounce address")
    return rt


@bounces_app.command("serve")
@reports_errors
def bounces_serve(host: HostOption = "127.0.0.1", port: PortOption = 2525) -> None:
    """Receive bounces, complaints and mailto unsubscribes over SMTP (point the bounce
    domain's MX here)."""
    from postroom.worker.bounce_listener import bounce_listener

    _logging()
    rt = _bounce_runtime()
    listener = bounce_listener(rt, host, port)
    try:
        listener.start()
    except (OSError, RuntimeError) as exc:
        raise ConfigError("--port", f"cannot listen on {host}:{port}: {exc}") from None
    console.print(f"bounces for {rt.settings.bounce_address} on smtp://{host}:{port}")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        listener.stop()


@bounces_app.command("poll")
@reports_errors
def bounces_poll(
    imap: Annotated[str, typer.Option(help="imaps://user:password@host:993/INBOX")],
    interval: Annotated[float, typer.Option(min=1, help="Seconds between polls.")] = 60.0,
    once: Annotated[bool, typer.Option("--once", help="Poll once and exit.")] = False,
) -> None:
    """Read bounces from a mailbox over IMAP; each unseen message is recorded, then marked
    seen (it stays in the mailbox)."""
    from postroom.worker.bounce_mailbox import parse_mailbox_url, poll_forever, poll_once

    _logging()
    mailbox = parse_mailbox_url(imap)
    rt = _bounce_runtime()
    if once:
        console.print(f"{poll_once(rt, mailbox)} message(s) recorded")
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    poll_forever(rt, mailbox, interval, stop)


@bounces_app.command("list")
@reports_errors
def bounces_list(
    outcome: Annotated[
        str | None, typer.Option(help="Only this outcome (unparseable, unmatched, …).")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many recent mails, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Counts of inbound mail by outcome, and the most recent mails."""
    from postroom.events.inbound_mail import inbound_counts, recent_inbound_mail

    rt = _runtime()
    with rt.db.read() as conn:
        counts = inbound_counts(conn)
        recent = recent_inbound_mail(conn, outcome=outcome, limit=limit)
    rows = [
        {
            "id": r.id,
            "received_at": r.received_at,
            "envelope_from": r.envelope_from,
            "envelope_to": r.envelope_to,
            "outcome": r.outcome,
            "detail": r.detail,
            "blob_key": r.blob_key,
        }
        for r in recent
    ]
    if as_json:
        print_json({"counts": counts, "recent": rows})
        return
    console.print("  ".join(f"{name} {count}" for name, count in counts.items()))
    for row in rows:
        kept = f"  kept {row['blob_key']}" if row["blob_key"] else ""
        console.print(
            f"{row['received_at']:%Y-%m-%d %H:%M:%S}  {row['outcome']:<11}  "
            f"{row['envelope_to']}  {row['detail'] or ''}{kept}",
            highlight=False,
        )
