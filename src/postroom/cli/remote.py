"""``postroom send`` and ``postroom campaigns``: the command line for people, driving a running
platform over HTTP through the SDK (``postroom.client``); it imports no server code.

Exit codes: 0 done (``send`` and ``--watch``: the campaign completed); 1 the platform refused a
request (``error (<code>): ...``); 2 bad usage (options, ``--at``/``--tz``, no API key); 3 the
campaign failed (its file was rejected); 4 the campaign was cancelled; 5 the platform could not
be reached; 130 interrupted (Ctrl-C) (``cli/connection.py``)."""

from __future__ import annotations

import csv
import io
import sys
from datetime import datetime
from email.utils import parseaddr
from itertools import islice
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from postroom.cli import campaign_view as view
from postroom.cli.connection import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CommandFailed,
    connect,
    reports_failures,
)
from postroom.cli.output import console, err_console, print_json
from postroom.client import Campaign, CampaignFailed, Client

#: How many of the file's row errors ``send`` prints (all of them: ``campaigns errors``).
SHOWN_ROW_ERRORS = 5

campaigns_app = typer.Typer(
    help="Campaigns on a running platform (--url, --api-key).", no_args_is_help=True
)

UrlOption = Annotated[
    str, typer.Option(envvar="POSTROOM_URL", help="The platform's address.", show_envvar=True)
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(envvar="POSTROOM_API_KEY", help="An API key (pr_...).", show_envvar=True),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Machine-readable output on stdout; no progress display.")
]
CampaignArgument = Annotated[str, typer.Argument(help="The campaign's id (cmp_...).")]
DEFAULT_URL = "http://127.0.0.1:8025"


def send_time(at: str | None, tz: str | None) -> datetime | None:
    """``--at`` (ISO date and time, e.g. ``2026-12-01 09:00``) in zone ``--tz`` (IANA name;
    this machine's zone when omitted) as an aware datetime; a time the clocks skip is refused.
    """
    if at is None:
        if tz is not None:
            raise CommandFailed(code="usage", message="--tz goes with --at", exit_code=EXIT_USAGE)
        return None
    try:
        moment = datetime.fromisoformat(at.strip())
    except ValueError:
        raise CommandFailed(
            code="invalid_date",
            message=f"--at {at!r} is not a date and time like 2026-12-01 09:00",
            exit_code=EXIT_USAGE,
        ) from None
    if tz is None:
        return moment if moment.tzinfo is not None else moment.astimezone()
    if moment.tzinfo is not None:
        raise CommandFailed(
            code="usage",
            message="give --tz or a UTC offset in --at, not both",
            exit_code=EXIT_USAGE,
        )
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise CommandFailed(
            code="invalid_timezone",
            message=f"--tz {tz!r} is not a time zone; use an IANA name such as Europe/Lisbon",
            exit_code=EXIT_USAGE,
        ) from None
    local = moment.replace(tzinfo=zone)
    if local.astimezone(ZoneInfo("UTC")).astimezone(zone).replace(tzinfo=None) != moment:
        raise CommandFailed(
            code="invalid_date",
            message=f"{at} does not exist in {tz} (the clocks skip it)",
            exit_code=EXIT_USAGE,
        )
    return local


def first_row_errors(client: Client, campaign_id: str, limit: int) -> list[view.RowError]:
    """The first ``limit`` rows of the campaign's errors CSV, reading no more than needed."""
    text = ""
    for chunk in client.errors_csv(campaign_id):
        text += chunk.decode("utf-8", "replace")
        if text.count("\n") > limit + 2:
            break
    return list(islice(csv.DictReader(io.StringIO(text)), limit))


def end(campaign: Campaign, as_json: bool) -> None:
    """Report how a followed campaign ended: JSON or the summary, then its exit code."""
    if as_json:
        print_json(campaign.model_dump(mode="json", by_alias=True))
    else:
        console.print(view.summary(campaign), highlight=False, soft_wrap=True)
    if campaign.status == "failed":
        error = campaign.error or {}
        raise CommandFailed(
            code=str(error.get("code", "failed")),
            message=str(error.get("message", "")),
            exit_code=EXIT_FAILED,
        )
    if campaign.status == "cancelled":
        raise CommandFailed(
            code="cancelled",
            message=f"campaign {campaign.id} was cancelled",
            exit_code=EXIT_CANCELLED,
        )


def follow(client: Client, campaign: Campaign, *, as_json: bool, show_report: bool) -> None:
    """Wait for the campaign to end with a live display (none with ``--json``); Ctrl-C stops
    watching, never the campaign."""

    def processed(current: Campaign) -> None:
        if show_report and not as_json:
            errors = current.file or {}
            listed = int(errors.get("invalid", 0)) + int(errors.get("duplicates", 0))
            rows = first_row_errors(client, current.id, SHOWN_ROW_ERRORS) if listed else []
            view.file_report(current, rows, console)

    live = view.LiveProgress(err_console, shown=not as_json, on_processed=processed)
    try:
        final = client.wait(campaign.id, on_progress=live.update)
    except CampaignFailed as exc:
        final = exc.campaign
    except KeyboardInterrupt:
        live.stop()
        raise CommandFailed(
            code="interrupted",
            message=f"stopped watching; campaign {campaign.id} goes on on the server. "
            f"Follow it with: postroom campaigns show {campaign.id} --watch",
            exit_code=EXIT_INTERRUPTED,
        ) from None
    finally:
        live.stop()
    if final.status == "failed" and not live.processed:
        processed(final)  # rejected while processing: its report says why, row by row
    end(final, as_json)


def sender(value: str | None) -> tuple[str | None, str | None]:
    """``--from "Team <team@example.com>"`` as (email, name)."""
    if value is None:
        return None, None
    name, email = parseaddr(value)
    if "@" not in email:
        raise CommandFailed(
            code="invalid_from",
            message=f"--from {value!r} holds no email address",
            exit_code=EXIT_USAGE,
        )
    return email, name or None


@reports_failures
def send(
    template: Annotated[
        Path, typer.Option(help="The template's HTML file.", exists=True, dir_okay=False)
    ],
    subject: Annotated[str, typer.Option(help='The subject, a template too: "Hi {{ name }}".')],
    to: Annotated[
        Path, typer.Option(help="The recipients' CSV file.", exists=True, dir_okay=False)
    ],
    from_: Annotated[
        str | None,
        typer.Option("--from", help='The sender, e.g. "Team <team@example.com>".'),
    ] = None,
    name: Annotated[str | None, typer.Option(help="The campaign's name.")] = None,
    at: Annotated[
        str | None, typer.Option(help='Send at this time, e.g. "2026-12-01 09:00".')
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option(
            help="The IANA time zone of --at, e.g. Europe/Lisbon; default: this machine's."
        ),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Return once created, printing the campaign id.")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Upload a template and a recipients file, create the campaign, show the file report and
    follow the sending to the end (exit 0: completed, 3: failed, 4: cancelled)."""
    send_at = send_time(at, tz)
    from_email, from_name = sender(from_)
    with connect(url, api_key) as client:
        try:
            with view.UploadBars(err_console, shown=not as_json) as bars:
                template_bar = bars.add(template.name, template.stat().st_size)
                uploaded_template = client.upload_template(template, subject=subject)
                bars.advance_to(template_bar, template.stat().st_size)
                file_bar = bars.add(to.name, to.stat().st_size)
                uploaded_file = client.upload_file(
                    to, on_progress=lambda sent, _total: bars.advance_to(file_bar, sent)
                )
        except KeyboardInterrupt:
            raise CommandFailed(
                code="interrupted",
                message="stopped while uploading; no campaign was created",
                exit_code=EXIT_INTERRUPTED,
            ) from None
        try:
            campaign = client.create_campaign(
                uploaded_template.id,
                uploaded_file.id,
                name=name,
                from_email=from_email,
                from_name=from_name,
                send_at=send_at,
            )
        except KeyboardInterrupt:
            raise CommandFailed(
                code="interrupted",
                message="stopped while creating the campaign; 'postroom campaigns list' shows "
                "whether it was made",
                exit_code=EXIT_INTERRUPTED,
            ) from None
        if no_wait:
            if as_json:
                print_json(campaign.model_dump(mode="json", by_alias=True))
            else:
                console.print(campaign.id, highlight=False)
            return
        if not as_json:
            console.print(f"campaign {campaign.id} created", highlight=False)
        follow(client, campaign, as_json=as_json, show_report=True)


@campaigns_app.command("list")
@reports_failures
def campaigns_list(
    status: Annotated[str | None, typer.Option(help="Only campaigns in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """The campaigns of the key's tenant, newest first."""
    with connect(url, api_key) as client:
        found = list(islice(client.iter_campaigns(status=status), limit))
    if as_json:
        print_json([c.model_dump(mode="json", by_alias=True) for c in found])
    else:
        console.print(view.campaigns_table(found))


@campaigns_app.command("show")
@reports_failures
def campaigns_show(
    campaign_id: CampaignArgument,
    watch: Annotated[
        bool, typer.Option("--watch", help="Follow it live until it ends (exit as send does).")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Where a campaign stands: status, file report, message counts and progress."""
    with connect(url, api_key) as client:
        campaign = client.status(campaign_id)
        if not watch:
            if as_json:
                print_json(campaign.model_dump(mode="json", by_alias=True))
            else:
                console.print(view.status_table(campaign))
            return
        if not as_json:
            console.print(view.status_table(campaign))
        follow(client, campaign, as_json=as_json, show_report=campaign.status == "processing")


def _control(action: str, campaign_id: str, as_json: bool, url: str, api_key: str | None) -> None:
    with connect(url, api_key) as client:
        campaign = getattr(client, action)(campaign_id)
    if as_json:
        print_json(campaign.model_dump(mode="json", by_alias=True))
    else:
        console.print(f"{campaign.id} {campaign.status}", highlight=False)


@campaigns_app.command("cancel")
@reports_failures
def campaigns_cancel(
    campaign_id: CampaignArgument,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Cancel a campaign: messages not yet handed over are never sent."""
    _control("cancel", campaign_id, as_json, url, api_key)


@campaigns_app.command("pause")
@reports_failures
def campaigns_pause(
    campaign_id: CampaignArgument,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Pause a campaign; ``resume`` carries on where it stopped."""
    _control("pause", campaign_id, as_json, url, api_key)


@campaigns_app.command("resume")
@reports_failures
def campaigns_resume(
    campaign_id: CampaignArgument,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Resume a paused campaign."""
    _control("resume", campaign_id, as_json, url, api_key)


@campaigns_app.command("errors")
@reports_failures
def campaigns_errors(
    campaign_id: CampaignArgument, url: UrlOption = DEFAULT_URL, api_key: ApiKeyOption = None
) -> None:
    """Stream the file's invalid and duplicate rows as CSV (row,email,reason,detail) to
    stdout: ``postroom campaigns errors ID > errors.csv``."""
    with connect(url, api_key) as client:
        out = sys.stdout.buffer
        for chunk in client.errors_csv(campaign_id):
            out.write(chunk)
        out.flush()


def register(app: typer.Typer) -> None:
    """Add ``send`` and ``campaigns`` to the ``postroom`` command."""
    app.command("send")(send)
    app.add_typer(campaigns_app, name="campaigns")
