"""What the admin commands share: the runtime they work on (its database reachable and its
schema current), their entries in the audit log, their logging, and their common options."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from postroom.errors import ConfigError

# Server modules are imported inside the functions that use them: together they take about a
# second to import, which ``postroom send``, ``campaigns`` and ``--help`` need not wait for.
if TYPE_CHECKING:
    from sqlalchemy import Connection

    from postroom.runtime import Runtime

HostOption = Annotated[str, typer.Option(help="Interface to listen on.")]
PortOption = Annotated[int, typer.Option(help="Port to listen on.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def admin_runtime(*, migrate_sqlite: bool = False) -> Runtime:
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


def audit_admin(
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


def configure_cli_logging() -> None:
    """Log to stderr in the format POSTROOM_LOG_FORMAT names."""
    # Alembic logs the set-up of its plug-ins at INFO when first imported; import it while
    # there is no handler yet, so that noise never reaches stderr.
    import postroom.db.migrate  # noqa: F401
    from postroom.config import load_settings
    from postroom.observability.logs import configure_logging

    configure_logging(load_settings().log_format)
