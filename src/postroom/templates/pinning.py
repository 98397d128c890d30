"""Pinning: the names a template loads other templates by, resolved among its tenant's own
templates when it is uploaded and kept with it; and what was pinned, read back for a render."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, or_, select

from postroom.blobs import BlobStore
from postroom.db.tables import templates
from postroom.templates.library import (
    MAX_TEMPLATES,
    Candidate,
    TemplateLibrary,
    gather_pins,
    pin_names,
    reachable,
    referenced_names,
)


@dataclass(frozen=True, slots=True)
class PinnedTemplate:
    """A template as it renders: its HTML and subject, the templates it loads, and a key
    that names exactly this version of all of them (for TemplateCache)."""

    html: str
    subject: str
    library: TemplateLibrary
    version_key: str


def pin_library(
    conn: Connection, blobs: BlobStore, template: Row[Any], html: str
) -> TemplateLibrary:
    """The library of a template being checked: each name its HTML loads a template by, pinned
    among its tenant's templates (an id, or the most recent ready template of that name), and
    what those load in turn; ``unusable`` says why a name could not be pinned."""
    names = referenced_names(html)
    query = (
        select(templates.c.id, templates.c.name, templates.c.status, templates.c.created_at)
        .where(templates.c.tenant_id == template.tenant_id)
        .where(
            or_(
                templates.c.id.in_(names[:MAX_TEMPLATES]),
                templates.c.name.in_(names[:MAX_TEMPLATES]),
            )
        )
    )
    candidates = [
        Candidate(row.id, row.name, row.status, row.created_at) for row in conn.execute(query)
    ]
    pins, unusable = pin_names(names, candidates, own_id=template.id)
    library, _ = _read_library(conn, blobs, template, pins, unusable)
    return library


def load_pinned_template(conn: Connection, blobs: BlobStore, template: Row[Any]) -> PinnedTemplate:
    """A ready template with the templates it pinned when it was uploaded, as it is sent."""
    html = blobs.read_bytes(template.blob_key).decode("utf-8-sig")
    library, rows = _read_library(conn, blobs, template, template.dependencies or {}, {})
    versions = sorted(f"{row.id}:{row.sha256}" for row in rows)
    key = ";".join([f"{template.id}:{template.sha256}", *versions])
    return PinnedTemplate(html, template.subject, library, key)


def _read_library(
    conn: Connection,
    blobs: BlobStore,
    template: Row[Any],
    root_pins: dict[str, str],
    unusable: dict[str, str],
) -> tuple[TemplateLibrary, list[Row[Any]]]:
    rows: dict[str, Row[Any]] = {}

    def read_pins(ids: list[str]) -> dict[str, dict[str, str]]:
        # Only this tenant's ready templates: a pin can never lead anywhere else.
        found = conn.execute(
            select(templates).where(
                templates.c.tenant_id == template.tenant_id,
                templates.c.id.in_(ids),
                templates.c.status == "ready",
            )
        ).all()
        rows.update((row.id, row) for row in found)
        return {row.id: dict(row.dependencies or {}) for row in found}

    pins, nesting = gather_pins(template.id, root_pins, read_pins)
    loaded = [
        rows[template_id] for template_id in reachable(template.id, pins) if template_id in rows
    ]
    library = TemplateLibrary(
        root_id=template.id,
        pins=pins,
        sources={row.id: blobs.read_bytes(row.blob_key).decode("utf-8-sig") for row in loaded},
        unusable={**unusable, **nesting},
        labels={row.id: f"{row.name!r} ({row.id})" for row in loaded},
    )
    return library, loaded
