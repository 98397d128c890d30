"""``postroom send`` and ``postroom campaigns`` against the real HTTP app (with its worker) on a
free port and a real SMTP relay: in-process through Typer's runner, and once as a process."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from postroom.cli.connection import CommandFailed
from postroom.cli.main import app
from postroom.cli.remote import send_time
from postroom.client import Client
from postroom.runtime import Runtime
from postroom.tenants.service import create_tenant
from tests.support.live_server import LiveServer, free_port
from tests.support.smtp_relay import SmtpRelay

POSTROOM = str(Path(sys.executable).parent / "postroom")
HTML = "<p>Hello {{ first_name }}</p>"
SUBJECT = "Hi {{ first_name }}"
LATER = "2031-07-01 09:00"  # Lisbon keeps summer time then: 08:00 UTC


class Platform:
    """The live server, an API key for a fresh tenant, and files to send."""

    def __init__(self, rt: Runtime, server: LiveServer, tmp_path: Path) -> None:
        self.rt = rt
        self.url = server.url
        with rt.db.write() as conn:
            _tenant, self.key = create_tenant(conn, "acme", rt.clock.now())
        self.dir = tmp_path
        self.template = tmp_path / "welcome.html"
        self.template.write_text(HTML)

    def recipients(self, text: str, name: str = "list.csv") -> Path:
        path = self.dir / name
        path.write_text(text)
        return path

    def run(self, *args: str, **env: str) -> Result:
        environment = {
            "POSTROOM_URL": self.url,
            "POSTROOM_API_KEY": self.key,
            "COLUMNS": "200",
            **env,
        }
        return CliRunner().invoke(app, list(args), env=environment)

    def send(self, to: Path, *args: str) -> Result:
        return self.run(
            "send", "--template", str(self.template), "--subject", SUBJECT, "--to", str(to), *args
        )

    def client(self) -> Client:
        return Client(self.url, self.key)


@pytest.fixture
def platform(relay_server: tuple[Runtime, LiveServer], tmp_path: Path) -> Platform:
    rt, server = relay_server
    return Platform(rt, server, tmp_path)


def rows(count: int) -> str:
    return "email,first_name\n" + "".join(f"p{i}@example.com,P{i}\n" for i in range(count))


def test_send_follows_the_campaign_to_the_end(platform: Platform, smtp_relay: SmtpRelay) -> None:
    result = platform.send(
        platform.recipients(rows(30)), "--from", "Team <team@example.com>", "--name", "Wave"
    )
    assert result.exit_code == 0, result.output
    assert "file: 30 rows, 30 valid, 0 invalid, 0 duplicates, 0 suppressed" in result.stdout
    assert "completed: 30 sent, 0 failed, 0 suppressed, 0 cancelled of 30" in result.stdout
    assert "welcome.html" in result.stderr and "list.csv" in result.stderr  # the upload bars
    assert "sent 30" in result.stderr  # the live bar's last state
    received = smtp_relay.handler.received
    assert sorted(r.recipients[0] for r in received) == sorted(
        f"p{i}@example.com" for i in range(30)
    )
    first = next(r.message for r in received if r.recipients == ["p3@example.com"])
    assert first["Subject"] == "Hi P3" and first["From"] == "Team <team@example.com>"
    with platform.client() as pr:
        [campaign] = pr.iter_campaigns()
    assert campaign.name == "Wave" and f"campaign {campaign.id} created" in result.stdout


def test_send_json_keeps_stdout_pure(platform: Platform, smtp_relay: SmtpRelay) -> None:
    result = platform.send(platform.recipients(rows(5)), "--json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["status"] == "completed" and status["counts"]["sent"] == 5
    assert status["transaction_id"].startswith("cmp_")
    assert result.stderr == ""
    assert len(smtp_relay.handler.received) == 5


def test_send_shows_the_first_row_errors(platform: Platform) -> None:
    bad = "".join(f"broken{i}.example.com,B{i}\n" for i in range(6))
    text = rows(3) + bad + "p0@example.com,Again\n"
    result = platform.send(platform.recipients(text))
    assert result.exit_code == 0, result.output
    assert "file: 10 rows, 3 valid, 6 invalid, 1 duplicates, 0 suppressed" in result.stdout
    lines = result.stdout.splitlines()
    shown = [line.split() for line in lines if "broken" in line]
    assert [cells[0] for cells in shown] == ["5", "6", "7", "8", "9"]  # the header is row 1
    assert all("invalid_email" in cells for cells in shown)
    assert "… 2 more: postroom campaigns errors cmp_" in result.stdout
    assert "completed: 3 sent" in result.stdout


def test_a_rejected_file_exits_3_with_its_code(platform: Platform) -> None:
    result = platform.send(platform.recipients("name,city\nAda,Lisbon\n"))
    assert result.exit_code == 3, result.output
    assert "error (no_email_column):" in result.stderr
    assert "failed" in result.stdout
    as_json = platform.send(platform.recipients("name,city\nAda,Lisbon\n"), "--json")
    assert as_json.exit_code == 3
    assert json.loads(as_json.stdout)["error"]["code"] == "no_email_column"
    nobody = platform.send(platform.recipients("email,first_name\nnot-an-address,X\n"))
    assert nobody.exit_code == 3 and "error (no_valid_recipients):" in nobody.stderr
    assert "not-an-address  invalid_email" in nobody.stdout
    (platform.dir / "broken.html").write_text("<p>{{ unclosed </p>")
    broken = platform.run(
        "send", "--template", str(platform.dir / "broken.html"), "--subject", "Hi", "--to", "x.csv"
    )
    assert broken.exit_code == 2  # x.csv does not exist: refused before anything is uploaded
    broken = platform.run(
        *("send", "--template", str(platform.dir / "broken.html"), "--subject", "Hi"),
        *("--to", str(platform.recipients(rows(1)))),
    )
    assert broken.exit_code == 1
    assert broken.stderr.splitlines()[-1].startswith("error (template_invalid): template tpl_")
    with platform.client() as pr:
        assert {c.status for c in pr.iter_campaigns()} == {"failed"}


def test_no_wait_prints_the_id_and_returns(platform: Platform) -> None:
    result = platform.send(platform.recipients(rows(2)), "--no-wait", "--at", LATER)
    assert result.exit_code == 0, result.output
    campaign_id = result.stdout.strip()
    with platform.client() as pr:
        assert pr.status(campaign_id).status in ("processing", "scheduled")


def test_at_and_tz_schedule_the_right_instant(platform: Platform) -> None:
    result = platform.send(
        platform.recipients(rows(2)), "--at", LATER, "--tz", "Europe/Lisbon", "--no-wait", "--json"
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert datetime.fromisoformat(created["scheduled_at"]) == datetime(2031, 7, 1, 8, tzinfo=UTC)
    shown = platform.run("campaigns", "show", created["transaction_id"])
    assert "2031-07-01 08:00:00 UTC" in shown.stdout


@pytest.mark.parametrize(
    ("at", "tz", "code"),
    [
        (LATER, "Mars/Olympus_Mons", "invalid_timezone"),
        ("next tuesday", "Europe/Lisbon", "invalid_date"),
        ("2031-03-30 01:30", "Europe/Lisbon", "invalid_date"),  # the clocks skip 01:00-02:00
    ],
)
def test_a_bad_time_or_zone_is_one_line_and_creates_nothing(
    platform: Platform, at: str, tz: str, code: str
) -> None:
    result = platform.send(platform.recipients(rows(2)), "--at", at, "--tz", tz)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error ({code}):") and len(result.stderr.splitlines()) == 1
    with platform.client() as pr:
        assert list(pr.iter_campaigns()) == []


def test_send_time_conversions() -> None:
    winter = send_time("2031-12-01 09:00", "Europe/Lisbon")
    assert winter is not None and winter.astimezone(UTC) == datetime(2031, 12, 1, 9, tzinfo=UTC)
    new_york = send_time("2031-12-01T09:00", "America/New_York")
    assert new_york is not None and new_york.astimezone(UTC).hour == 14
    offset = send_time("2031-12-01T09:00+02:00", None)
    assert offset is not None and offset.astimezone(UTC).hour == 7
    assert send_time(None, None) is None
    with pytest.raises(CommandFailed):
        send_time(None, "Europe/Lisbon")
    with pytest.raises(CommandFailed):
        send_time("2031-12-01T09:00+02:00", "Europe/Lisbon")


def test_a_wrong_api_key_is_refused_in_one_line(platform: Platform) -> None:
    result = platform.run("campaigns", "list", POSTROOM_API_KEY="pr_nope_nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("error (invalid_api_key):")
    assert "Traceback" not in result.output
    missing = platform.run("campaigns", "list", POSTROOM_API_KEY="")
    assert missing.exit_code == 2 and missing.stderr.startswith("error (missing_api_key):")


def test_an_unreachable_platform_is_named(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["campaigns", "list", "--url", url, "--api-key", "pr_x_y"])
    assert result.exit_code == 5
    assert result.stderr.startswith("error (unreachable): cannot reach Postroom at " + url)
    assert len(result.stderr.splitlines()) == 1


def test_campaigns_commands(platform: Platform) -> None:
    sent = platform.send(platform.recipients(rows(3) + "nobody.example.com,X\n"), "--json")
    done = json.loads(sent.stdout)["transaction_id"]
    later = json.loads(
        platform.send(platform.recipients(rows(2)), "--at", LATER, "--no-wait", "--json").stdout
    )["transaction_id"]
    with platform.client() as pr:
        while pr.status(later).status == "processing":
            time.sleep(0.05)

    listed = json.loads(platform.run("campaigns", "list", "--json").stdout)
    assert [c["transaction_id"] for c in listed] == [later, done]
    scheduled = json.loads(
        platform.run("campaigns", "list", "--status", "scheduled", "--json").stdout
    )
    assert [c["transaction_id"] for c in scheduled] == [later]
    table = platform.run("campaigns", "list").stdout
    assert done in table and later in table and "scheduled" in table

    shown = platform.run("campaigns", "show", done)
    assert shown.exit_code == 0 and "completed" in shown.stdout
    assert "3 sent" in shown.stdout and "4 rows, 3 valid, 1 invalid" in shown.stdout
    assert (
        json.loads(platform.run("campaigns", "show", done, "--json").stdout)["counts"]["sent"] == 3
    )
    watched = platform.run("campaigns", "show", done, "--watch")
    assert watched.exit_code == 0 and "completed: 3 sent" in watched.stdout

    errors = platform.run("campaigns", "errors", done)
    assert errors.exit_code == 0
    report = list(csv.reader(io.StringIO(errors.stdout)))
    assert report[0] == ["row", "email", "reason", "detail"]
    assert report[1][:3] == ["5", "nobody.example.com", "invalid_email"]

    assert platform.run("campaigns", "pause", later).stdout.strip() == f"{later} paused"
    resumed = json.loads(platform.run("campaigns", "resume", later, "--json").stdout)
    assert resumed["status"] == "scheduled"
    assert platform.run("campaigns", "cancel", later).stdout.strip() == f"{later} cancelled"
    again = platform.run("campaigns", "cancel", later)
    assert again.exit_code == 1 and again.stderr.startswith("error (campaign_finished):")
    watched_cancelled = platform.run("campaigns", "show", later, "--watch")
    assert watched_cancelled.exit_code == 4
    assert "error (cancelled):" in watched_cancelled.stderr

    missing = platform.run("campaigns", "show", "cmp_nope")
    assert missing.exit_code == 1 and missing.stderr.startswith("error (campaign_not_found):")


def test_ctrl_c_while_uploading_creates_no_campaign(platform: Platform) -> None:
    fifo = platform.dir / "never.csv"
    os.mkfifo(fifo)  # opening it blocks until a writer comes: the upload hangs there
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    # Ctrl-C raises KeyboardInterrupt, as in a terminal, even where the test runner's
    # process was started with SIGINT ignored (a pytest-xdist worker).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    # Should Ctrl-C never arrive, the upload is let through after a while: the test then
    # fails on its exit code instead of hanging until the suite's timeout.
    unblock = threading.Timer(30, lambda: fifo.write_bytes(b""))
    timer.start()
    unblock.start()
    try:
        result = platform.send(fifo)
    finally:
        timer.cancel()
        unblock.cancel()
        signal.signal(signal.SIGINT, previous)
    assert result.exit_code == 130, result.output
    assert "error (interrupted): stopped while uploading; no campaign was created" in result.stderr
    with platform.client() as pr:
        assert list(pr.iter_campaigns()) == []


def test_ctrl_c_while_waiting_leaves_the_campaign_running(platform: Platform) -> None:
    """The real entry point, as a process: Ctrl-C stops watching, never the campaign."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTROOM_")}
    env.update(POSTROOM_URL=platform.url, POSTROOM_API_KEY=platform.key)
    to = platform.recipients(rows(2))
    args = ["send", "--template", str(platform.template), "--subject", "Hi", "--to", str(to)]
    process = subprocess.Popen(
        [POSTROOM, *args, "--at", LATER],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # As from a terminal: Ctrl-C reaches it even where the test runner's process was
        # started with SIGINT ignored (a pytest-xdist worker), which a child would inherit.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        with platform.client() as pr:
            deadline = time.monotonic() + 30
            found = []
            while not found and time.monotonic() < deadline:
                found = [c for c in pr.iter_campaigns() if c.status == "scheduled"]
                time.sleep(0.1)
            assert found, "the campaign was never scheduled"
            time.sleep(1.0)  # the command is in its wait loop now
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=30)
            assert pr.status(found[0].id).status == "scheduled"
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert f"postroom campaigns show {found[0].id} --watch" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert "file: 2 rows, 2 valid" in stdout.decode()
