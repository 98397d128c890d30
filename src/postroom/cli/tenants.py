"""``postroom tenant create | limits | quotas | tracking`` and ``postroom key create | revoke
| list``: tenants, their limits, and their API keys."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from postroom.cli.admin import JsonOption, admin_runtime, audit_admin
from postroom.cli.output import console, print_json, reports_errors

tenant_app = typer.Typer(help="Tenants.", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)


@tenant_app.command("create")
@reports_errors
def tenant_create(name: str, as_json: JsonOption = False) -> None:
    """Create a tenant and print its first API key (shown once, stored only as a hash)."""
    from postroom.tenants import service as tenants

    rt = admin_runtime(migrate_sqlite=True)
    with rt.db.write() as conn:
        tenant_id, key = tenants.create_tenant(conn, name, rt.clock.now())
        audit_admin(rt, conn, tenant_id, "tenant create", {"name": name})
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

    rt = admin_runtime()
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
            audit_admin(rt, conn, tenant, "tenant limits", {"rate": rate, "domain": domain or []})
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

    rt = admin_runtime()
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
            audit_admin(rt, conn, tenant, "tenant quotas", given)
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

    rt = admin_runtime()
    with rt.db.write() as conn:
        defaults = tenants.set_tracking_defaults(conn, tenant, opens=opens, clicks=clicks)
        if opens is not None or clicks is not None:
            audit_admin(rt, conn, tenant, "tenant tracking", {"opens": opens, "clicks": clicks})
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

    rt = admin_runtime()
    with rt.db.write() as conn:
        key = tenants.create_key(conn, tenant, rt.clock.now(), scopes=scope)
        audit_admin(rt, conn, tenant, "key create", {"key_id": key.split("_")[1], "scopes": scope})
    if as_json:
        print_json({"tenant_id": tenant, "api_key": key, "scopes": scope})
    else:
        console.print(key, highlight=False)


@key_app.command("revoke")
@reports_errors
def key_revoke(key_id: str) -> None:
    """Revoke a key by its id (the part between ``pr_`` and the next ``_``)."""
    from postroom.tenants import service as tenants

    rt = admin_runtime()
    with rt.db.write() as conn:
        tenant_id = tenants.revoke_key(conn, key_id, rt.clock.now())
        audit_admin(rt, conn, tenant_id, "key revoke", {"key_id": key_id})
    console.print(f"revoked {key_id}")


@key_app.command("list")
@reports_errors
def key_list(tenant: str, as_json: JsonOption = False) -> None:
    """List TENANT's keys (ids only; secrets are never stored)."""
    from postroom.tenants import service as tenants

    rt = admin_runtime()
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
