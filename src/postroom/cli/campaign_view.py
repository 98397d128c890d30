"""How a remote campaign looks in a terminal: the file report, the status table, the campaigns
table, the live progress while it sends, and the closing summary (Rich, SDK models only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from postroom.client import Campaign

#: Columns of ``GET .../errors``, the file's invalid and duplicate rows.
RowError = dict[str, str]


def when(moment: datetime | None) -> str:
    """A moment as UTC wall time, the way the API stores it; blank when unset."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def file_report(campaign: Campaign, row_errors: Sequence[RowError], console: Console) -> None:
    """The file's figures, then its first row errors and where to get all of them."""
    report = campaign.file or {}
    console.print(
        f"file: {report.get('rows', 0)} rows, {report.get('valid', 0)} valid, "
        f"{report.get('invalid', 0)} invalid, {report.get('duplicates', 0)} duplicates, "
        f"{campaign.counts.suppressed} suppressed",
        highlight=False,
        soft_wrap=True,
    )
    for warning in report.get("warnings") or []:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if not row_errors:
        return
    table = Table("row", "email", "reason", "detail", box=None, pad_edge=False)
    for error in row_errors:
        table.add_row(error["row"], error["email"], error["reason"], error["detail"])
    console.print(table)
    listed = int(report.get("invalid", 0)) + int(report.get("duplicates", 0))
    if listed > len(row_errors):
        console.print(
            f"… {listed - len(row_errors)} more: postroom campaigns errors {campaign.id} "
            "> errors.csv",
            highlight=False,
            soft_wrap=True,
        )


def status_table(campaign: Campaign) -> Table:
    """One campaign, field by field, for ``campaigns show``."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    counts = campaign.counts
    report = campaign.file or {}
    rows = [
        ("id", campaign.id),
        ("name", campaign.name),
        ("status", campaign.status),
        (
            "error",
            f"{campaign.error['code']}: {campaign.error['message']}" if campaign.error else "",
        ),
        ("created", when(campaign.created_at)),
        ("scheduled", when(campaign.scheduled_at)),
        ("started", when(campaign.started_at)),
        ("paused", when(campaign.paused_at)),
        ("completed", when(campaign.completed_at)),
        (
            "file",
            f"{report.get('rows', 0)} rows, {report.get('valid', 0)} valid, "
            f"{report.get('invalid', 0)} invalid, {report.get('duplicates', 0)} duplicates",
        ),
        (
            "messages",
            f"{counts.total} total, {counts.queued} queued, {counts.sending} sending, "
            f"{counts.sent} sent, {counts.deferred} deferred, {counts.failed} failed, "
            f"{counts.suppressed} suppressed, {counts.cancelled} cancelled",
        ),
        (
            "after sending",
            f"{counts.delivered} delivered, {counts.bounced} bounced, "
            f"{counts.complained} complained, {counts.opened} opened, {counts.clicked} clicked, "
            f"{counts.unsubscribed} unsubscribed",
        ),
        ("progress", f"{campaign.progress:.0%}"),
    ]
    if campaign.possible_duplicates:
        rows.append(("possible duplicates", str(campaign.possible_duplicates)))
    for name, value in rows:
        if value:
            table.add_row(name, value)
    return table


def campaigns_table(found: Sequence[Campaign]) -> Table:
    """Campaigns one a line, for ``campaigns list``."""
    table = Table("id", "name", "status", "created", "total", "sent", "failed", "progress")
    for campaign in found:
        table.add_row(
            campaign.id,
            campaign.name,
            campaign.status,
            when(campaign.created_at),
            str(campaign.counts.total),
            str(campaign.counts.sent),
            str(campaign.counts.failed),
            f"{campaign.progress:.0%}",
        )
    return table


def summary(campaign: Campaign) -> str:
    """The closing line: how it ended, what became of the messages, how long sending took."""
    counts = campaign.counts
    line = (
        f"{campaign.id} {campaign.status}: {counts.sent} sent, {counts.failed} failed, "
        f"{counts.suppressed} suppressed, {counts.cancelled} cancelled of {counts.total}"
    )
    if campaign.started_at and campaign.completed_at:
        seconds = (campaign.completed_at - campaign.started_at).total_seconds()
        line += f" in {seconds:.1f} s"
    if campaign.possible_duplicates:
        line += f" ({campaign.possible_duplicates} possibly sent twice)"
    return line


class UploadBars:
    """Byte progress bars for the template and the recipients file (off when not shown)."""

    def __init__(self, console: Console, *, shown: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
            disable=not shown,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def __enter__(self) -> UploadBars:
        self.progress.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.progress.stop()

    def add(self, name: str, size: int) -> TaskID:
        return self.progress.add_task(name, total=size)

    def advance_to(self, task: TaskID, sent: int) -> None:
        self.progress.update(task, completed=sent)


class LiveProgress:
    """Follows a campaign through ``Client.wait(on_progress=...)``: a spinner while its file
    is processed, then (after ``on_processed``, e.g. printing the file report) a bar of
    finished messages until it ends. Drawn on ``console`` (stderr), never redirecting stdout,
    so what is printed on stdout stays clean when it is piped."""

    def __init__(
        self, console: Console, *, shown: bool, on_processed: Callable[[Campaign], None]
    ) -> None:
        self.console = console
        self.shown = shown
        self.on_processed = on_processed
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.processed = False

    def update(self, campaign: Campaign) -> None:
        if campaign.status == "processing":
            self._show_processing()
            return
        if not self.processed:
            self.processed = True
            self.stop()
            self.on_processed(campaign)
        self._show_sending(campaign)

    def _show_processing(self) -> None:
        if self.progress is None:
            self.progress = self._start(
                SpinnerColumn(), TextColumn("processing the file…"), transient=True
            )

    def _show_sending(self, campaign: Campaign) -> None:
        if self.progress is None or self.task is None:
            self.progress = self._start(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[figures]}"),
                TimeElapsedColumn(),
                transient=False,
            )
            self.task = self.progress.add_task("", total=None, figures="")
        counts = campaign.counts
        status = campaign.status
        if status == "scheduled" and campaign.scheduled_at:
            status = f"scheduled for {when(campaign.scheduled_at)}"
        self.progress.update(
            self.task,
            description=status,
            total=counts.total or None,
            completed=counts.sent + counts.failed + counts.suppressed + counts.cancelled,
            figures=f"sent {counts.sent} · failed {counts.failed} · deferred {counts.deferred}",
        )

    def _start(self, *columns: ProgressColumn, transient: bool) -> Progress:
        progress = Progress(
            *columns,
            console=self.console,
            disable=not self.shown,
            transient=transient,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        progress.start()
        return progress

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
            self.task = None
