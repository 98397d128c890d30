"""``postroom storage new-key | rotate-key``: the keys that encrypt the blob store at rest."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

from postroom.cli.output import console, err_console, print_json, reports_errors
from postroom.errors import ConfigError

if TYPE_CHECKING:
    from postroom.blobs.local import LocalBlobStore

storage_app = typer.Typer(help="The blob store's encryption at rest.", no_args_is_help=True)

#: What rotation did to each blob, in the order it is reported.
OUTCOMES = ("rewrapped", "encrypted", "current", "unreadable", "gone")


@storage_app.command("new-key")
@reports_errors
def new_key(
    key_id: Annotated[str, typer.Argument(help="1 to 32 letters, digits or ._-")],
) -> None:
    """Print a new ``id:base64`` key to put first in POSTROOM_STORAGE_ENCRYPTION_KEYS."""
    from postroom.storage_keys import new_key_entry

    try:
        entry = new_key_entry(key_id)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(entry)


@storage_app.command("rotate-key")
@reports_errors
def rotate_key(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Bring every blob under the current (first) storage key: re-wrap the data key of those
    under older keys and encrypt those stored in plaintext before encryption existed. Exits 1
    naming the blobs it could not read."""
    from postroom.blobs.local import LocalBlobStore
    from postroom.cli.admin import admin_runtime, audit_admin

    rt = admin_runtime()
    store = rt.blobs
    if not isinstance(store, LocalBlobStore) or store.keyring is None:
        raise ConfigError(
            "POSTROOM_STORAGE_URL",
            "rotate-key applies to file:// storage only; s3:// storage is encrypted by S3 "
            "itself (?sse=AES256 or ?sse=aws:kms in the URL; KMS rotates its own keys)",
        )
    current = store.keyring.current.key_id
    rotation = _rotate(store)
    with rt.db.write() as conn:
        for tenant_id, counts in rotation.by_tenant.items():
            if counts["rewrapped"] or counts["encrypted"] or counts["unreadable"]:
                target = {"storage_key": current, **{o: counts[o] for o in OUTCOMES}}
                audit_admin(rt, conn, tenant_id, "storage rotate-key", target)
    totals = {o: rotation.totals[o] for o in OUTCOMES}
    if as_json:
        print_json({"storage_key": current, **totals, "unreadable_blobs": rotation.unreadable})
    else:
        console.print(f"storage key  {current} (current)", highlight=False)
        for outcome, count in totals.items():
            console.print(f"{outcome:<12} {count}", highlight=False)
        for blob in rotation.unreadable:
            err_console.print(f"unreadable  {blob['key']}: {blob['problem']}", highlight=False)
    if rotation.unreadable:
        raise typer.Exit(1)


@dataclass
class Rotation:
    """What ``rotate-key`` did: counts by outcome, overall and per tenant, and what failed."""

    totals: Counter[str] = field(default_factory=Counter)
    by_tenant: dict[str, Counter[str]] = field(default_factory=dict)
    unreadable: list[dict[str, str]] = field(default_factory=list)


def _rotate(store: LocalBlobStore) -> Rotation:
    from postroom.errors import BlobUnreadable, NotFound

    rotation = Rotation()
    for key in store.stored_keys():
        try:
            outcome: str = store.rekey(key)
        except BlobUnreadable as exc:
            outcome = "unreadable"
            rotation.unreadable.append({"key": key, "problem": exc.message})
        except NotFound:
            outcome = "gone"  # deleted while the rotation ran
        rotation.totals[outcome] += 1
        tenant_id = _tenant_of(key)
        if tenant_id is not None:
            rotation.by_tenant.setdefault(tenant_id, Counter())[outcome] += 1
    return rotation


def _tenant_of(key: str) -> str | None:
    """The tenant a blob belongs to, from its key ``t/<tenant>/…`` (inbound mail has none)."""
    parts = key.split("/", 2)
    return parts[1] if len(parts) == 3 and parts[0] == "t" else None
