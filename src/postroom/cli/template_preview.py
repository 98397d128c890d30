"""``postroom template preview``: render a template for one recipient on this machine, with
the code the platform sends with (the sandbox, the built-in variables, the CSV reader and the
composer), and write the HTML part, the text part and the whole message to look at."""

from __future__ import annotations

import json
import webbrowser
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from postroom.cli.output import console, print_json, reports_errors
from postroom.errors import BadRequest, FileRejected

if TYPE_CHECKING:
    from postroom.templates.library import TemplateLibrary

# The platform's rendering code is imported inside ``preview``: it takes a quarter of a second
# that every other ``postroom`` command would otherwise wait for.

template_app = typer.Typer(help="Templates, checked and rendered locally.", no_args_is_help=True)

#: Stands for a message's own signed token, which only exists once the message does.
PREVIEW_TOKEN = "preview"  # noqa: S105 (not a secret: a stand-in for one)


@dataclass(frozen=True, slots=True)
class PreviewRow:
    """The recipient a preview is rendered for: their columns and their address."""

    columns: list[str]
    fields: dict[str, str]
    email: str
    source: str  # where it came from, for the report


@template_app.command("preview")
@reports_errors
def preview(
    template: Annotated[Path, typer.Argument(help="The template's HTML file.")],
    subject: Annotated[str, typer.Option(help="The subject line (a template too).")],
    data: Annotated[
        Path | None, typer.Option(help="A JSON object with the recipient's fields.")
    ] = None,
    csv: Annotated[Path | None, typer.Option(help="A recipient CSV to take a row from.")] = None,
    row: Annotated[
        int | None,
        typer.Option(help="The CSV row to use, numbered as a spreadsheet shows it (header 1)."),
    ] = None,
    email_column: Annotated[
        str | None, typer.Option(help="The CSV's address column, when not found by name.")
    ] = None,
    sender: Annotated[
        str | None, typer.Option("--from", help='The sender, e.g. "Team <team@example.com>".')
    ] = None,
    partials: Annotated[
        Path | None,
        typer.Option(
            help="Where the layouts and partials it names are, as NAME.html "
            "(default: the template's folder)."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Where to write the preview files.")] = Path("."),
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the HTML part in a browser.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Render TEMPLATE for one recipient exactly as a campaign would, and write
    <name>.preview.html, .txt and .eml. Exits 1, naming them, when the recipient's data
    lacks variables the template uses (a campaign would be refused for the same reason).
    A name the template extends, includes or imports is read from NAME.html in --partials."""
    from postroom.config import load_settings
    from postroom.delivery.compose import Mailbox, MessageParts, compose_message
    from postroom.events.unsubscribe import unsubscribe_url
    from postroom.templates.builtins import message_fields, missing_variables
    from postroom.templates.limits import RenderLimits
    from postroom.templates.sandbox import check_template, compile_template

    settings = load_settings()
    limits = RenderLimits.from_settings(settings)
    html = _read_text(template, "template")
    library = _local_library(template, html, partials or template.parent)
    check = check_template(
        html, subject, max_bytes=settings.template_max_bytes, limits=limits, library=library
    )
    if not check.is_valid:
        raise BadRequest(
            "The template is invalid: "
            + "; ".join(
                f"{p.part}{f' line {p.line}' if p.line else ''}: {p.message}"
                for p in check.problems
            ),
            code="template_invalid",
        )
    recipient = _recipient(data, csv, row, email_column, settings.csv_max_columns)
    missing = missing_variables(check.variables, recipient.columns)
    if missing:
        raise FileRejected(
            f"{recipient.source} has no value for: {', '.join(missing)} "
            "(a campaign with this file would be refused with missing_columns).",
            code="missing_columns",
        )
    link = unsubscribe_url(settings.base_url, PREVIEW_TOKEN)
    fields = message_fields(recipient.fields, recipient.email, link)
    content = compile_template(html, subject, limits=limits, library=library).render(fields)
    name, address = parseaddr(sender or settings.default_from)
    message = compose_message(
        MessageParts(
            sender=Mailbox(address, name or None),
            recipient=Mailbox(recipient.email),
            subject=content.subject,
            html=content.html,
            text=content.text,
            message_id=f"preview@{address.rpartition('@')[2] or 'localhost'}",
            date=datetime.now(UTC),
            extra_headers=(
                ("List-Unsubscribe", f"<{link}>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ),
        )
    )
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{template.stem}.preview"
    written = {
        "html": _write(out / f"{stem}.html", content.html.encode()),
        "text": _write(out / f"{stem}.txt", content.text.encode()),
        "message": _write(out / f"{stem}.eml", message),
    }
    if open_browser:
        webbrowser.open(written["html"].resolve().as_uri())
    report: dict[str, Any] = {
        "subject": content.subject,
        "recipient": recipient.email,
        "source": recipient.source,
        "variables": check.variables,
        "files": {part: str(path) for part, path in written.items()},
    }
    if as_json:
        print_json(report)
        return
    console.print(f"[bold]Subject:[/bold] {content.subject}", highlight=False)
    console.print(f"[bold]To:[/bold] {recipient.email}  [dim]({recipient.source})[/dim]")
    console.print(f"[bold]Variables:[/bold] {', '.join(check.variables) or '(none)'}")
    for part, path in written.items():
        console.print(f"  {part:<8} {path}", highlight=False)


def _local_library(template: Path, html: str, folder: Path) -> TemplateLibrary:
    """The templates TEMPLATE loads, read from NAME.html files in ``folder``, checked as the
    platform checks what a template loads (circles, depth, how many)."""
    from postroom.templates.library import TemplateLibrary, gather_pins, reachable, referenced_names

    def pins_in(text: str) -> dict[str, str]:
        return {name: name for name in referenced_names(text) if _partial(folder, name)}

    def read_pins(names: list[str]) -> dict[str, dict[str, str]]:
        return {name: pins_in(_read_text(folder / f"{name}.html", "partial")) for name in names}

    root_id = template.stem
    root_pins = pins_in(html)
    unusable = {
        name: f"there is no {name}.html in {folder}"
        for name in referenced_names(html)
        if name not in root_pins
    }
    if root_id in root_pins:
        unusable[root_pins.pop(root_id)] = "a template cannot load itself"
    pins, nesting = gather_pins(root_id, root_pins, read_pins)
    names = reachable(root_id, pins)
    return TemplateLibrary(
        root_id=root_id,
        pins=pins,
        sources={name: _read_text(folder / f"{name}.html", "partial") for name in names},
        unusable={**unusable, **nesting},
        labels={name: f"{name}.html" for name in names},
    )


def _partial(folder: Path, name: str) -> bool:
    """Whether ``name`` is a plain file name with a NAME.html in ``folder`` (no path)."""
    plain = name not in ("", ".", "..") and not any(mark in name for mark in "/\\\x00")
    return plain and (folder / f"{name}.html").is_file()


def _recipient(
    data: Path | None, csv: Path | None, row: int | None, email_column: str | None, columns: int
) -> PreviewRow:
    if (data is None) == (csv is None):
        raise BadRequest("Give the recipient as --data row.json or --csv list.csv.", code="usage")
    if data is not None:
        if row is not None:
            raise BadRequest("--row goes with --csv.", code="usage")
        return _json_row(data)
    assert csv is not None
    return _csv_row(csv, row, email_column, columns)


def _json_row(path: Path) -> PreviewRow:
    try:
        loaded = json.loads(_read_text(path, "data file"))
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{path} is not JSON: {exc}", code="invalid_json") from None
    if not isinstance(loaded, dict):
        raise BadRequest(f"{path} must hold one JSON object of fields.", code="invalid_json")
    fields: dict[str, str] = {}
    for name, value in loaded.items():
        if isinstance(value, dict | list):
            raise BadRequest(
                f"{path}: the field {name!r} must be text or a number, as a CSV cell is.",
                code="invalid_json",
            )
        fields[name] = "" if value is None else str(value)
    email = fields.get("email", "")
    if not email:
        raise BadRequest(f'{path} needs an "email" field.', code="missing_email")
    return PreviewRow(list(fields), fields, email, str(path))


def _csv_row(path: Path, row: int | None, email_column: str | None, columns: int) -> PreviewRow:
    from postroom.files.csvreader import CsvLimits, RecipientFile, RowProblem

    with path.open("rb") as stream:
        reader = RecipientFile(
            stream, email_column=email_column, limits=CsvLimits(max_columns=columns)
        )
        reader.open()
        for found in reader.rows():
            if row is not None and found.row < row:
                continue
            if row is not None and found.row > row:
                break
            where = f"{path} row {found.row}"
            if isinstance(found, RowProblem):
                raise BadRequest(f"{where} would be refused: {found.detail}", code=found.reason)
            return PreviewRow(reader.columns, found.fields, found.email, where)
    what = f"no row {row}" if row is not None else "no recipients"
    raise BadRequest(f"{path} has {what}.", code="row_not_found")


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise BadRequest(f"The {what} {path} does not exist.", code="file_not_found") from None
    except UnicodeDecodeError:
        raise BadRequest(f"The {what} {path} is not UTF-8 text.", code="not_utf8") from None


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path
