"""Bounces in SMTP mode: VERP return paths on what goes out, and the inbound side (the
``bounces serve`` listener over real SMTP, the ``bounces poll`` IMAP reader) turning DSNs,
ARF complaints and mailto unsubscribes into events and suppressions, once each; forged
tokens and unreadable mail are counted and kept, never recorded."""

from __future__ import annotations

import json
import re
import signal
import smtplib
import subprocess
from pathlib import Path

import pytest

from postroom.events.inbound_mail import inbound_counts, recent_inbound_mail
from postroom.runtime import build_runtime
from postroom.worker.bounce_listener import bounce_listener
from postroom.worker.bounce_mailbox import parse_mailbox_url, poll_once
from tests.conftest import make_settings
from tests.integration.conftest import ServerFactory
from tests.integration.test_campaign_flow import csv_bytes
from tests.integration.test_cli import POSTROOM, cli_env, postroom
from tests.integration.test_unsubscribe import sent_messages
from tests.support.api_client import ApiClient
from tests.support.imap_server import ImapServer
from tests.support.live_server import free_port
from tests.support.smtp_relay import SmtpRelay

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bounces"
BOUNCES = "bounces@bounce.example.com"
VERP = re.compile(r"bounces\+(\d+)-([a-z2-7]{16})@bounce\.example\.com")


def fixture(name: str) -> bytes:
    """A fixture with CRLF line ends, as it travels over SMTP (the files have LF)."""
    return re.sub(rb"\r?\n", b"\r\n", (FIXTURES / name).read_bytes())


def fixture_to(name: str, address: str, *, replace: str) -> bytes:
    """A fixture with one of its addresses swapped for ours (as the report would name it)."""
    return fixture(name).replace(replace.encode(), address.encode())


def send_campaign(api: ApiClient, emails: list[str]) -> str:
    template_id = api.upload_template("<p>Hi</p>", "Hi")
    file_id = api.upload_file(csv_bytes([["email"], *([e] for e in emails)]))
    campaign_id: str = api.create_campaign(template_id=template_id, file_id=file_id).json()[
        "transaction_id"
    ]
    assert api.wait(campaign_id)["status"] == "completed"
    return campaign_id


def test_bounces_through_the_listener(
    server_factory: ServerFactory, smtp_relay: SmtpRelay, tmp_path: Path
) -> None:
    rt, api = server_factory.start(transport_url=smtp_relay.url, bounce_address=BOUNCES)
    emails = ["hard@example.com", "soft@example.com", "angry@example.com", "leaving@example.com"]
    campaign_id = send_campaign(api, emails)

    # What went out: a VERP return path and a mailto unsubscribe per message.
    verp = {}
    for received in smtp_relay.received:
        assert VERP.fullmatch(received.sender), received.sender
        verp[received.recipients[0]] = received.sender
        header = str(received.message["List-Unsubscribe"])
        token = received.sender.removeprefix("bounces+").partition("@")[0]
        assert header == (
            f"<{rt.settings.base_url}/u/"
            + header.split("/u/")[1].split(">")[0]
            + f">, <mailto:bounces+u-{token}@bounce.example.com?subject=unsubscribe>"
        )
        assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sorted(verp) == sorted(emails)

    port = free_port()
    listener = bounce_listener(rt, "127.0.0.1", port)
    listener.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            hard = fixture_to(
                "dsn-postfix-permanent-5.1.1.eml",
                verp["hard@example.com"],
                replace="foo@example.com",
            )
            smtp.sendmail("", [verp["hard@example.com"]], hard)
            smtp.sendmail("", [verp["hard@example.com"]], hard)  # the same report again
            soft = fixture_to(
                "dsn-delayed-warning-4.4.4.eml",
                verp["soft@example.com"],
                replace="support@example.net",
            )
            smtp.sendmail("", [verp["soft@example.com"]], soft)
            # The complaint is sent to the bare address: the token is in Original-Mail-From.
            original_from = f"Original-Mail-From: <{verp['angry@example.com']}>\r\n"
            arf = fixture("arf-aol-complaint.eml").replace(
                b"Version: 0.1\r\n", b"Version: 0.1\r\n" + original_from.encode()
            )
            smtp.sendmail("scomp@aol.net", [BOUNCES], arf)
            unsubscribe_to = verp["leaving@example.com"].replace("bounces+", "bounces+u-")
            smtp.sendmail("leaving@example.com", [unsubscribe_to], b"Subject: unsubscribe\r\n\r\n")
            # A forged token: one character of the MAC changed.
            pk, mac = VERP.fullmatch(verp["hard@example.com"]).groups()  # type: ignore[union-attr]
            forged = f"bounces+{pk}-{'a' if mac[0] != 'a' else 'b'}{mac[1:]}@bounce.example.com"
            smtp.sendmail(
                "",
                [forged],
                fixture_to("dsn-postfix-permanent-5.1.1.eml", forged, replace="foo@example.com"),
            )
            garbage = (bytes(b for b in range(1, 256) if b not in b"\r\n.") + b"\r\n") * 8
            smtp.sendmail("", [BOUNCES], garbage)
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                smtp.sendmail("", ["someone@other.example"], b"Subject: x\r\n\r\nx\r\n")
            assert refused.value.recipients["someone@other.example"][0] == 550
    finally:
        listener.stop()

    by_email = {m["email"]: m for m in api.messages(campaign_id)}
    counts = api.status(campaign_id)["counts"]
    # hard and soft both count as bounced messages; only the hard one suppresses.
    assert (counts["bounced"], counts["complained"], counts["unsubscribed"]) == (2, 1, 1)
    detail = api.http.get(
        f"/api/v1/campaigns/{campaign_id}/messages/{by_email['hard@example.com']['id']}"
    ).json()
    assert detail["outcome"] == "bounced"
    events = api.http.get(
        f"/api/v1/campaigns/{campaign_id}/events", params={"type": "bounced"}
    ).json()["events"]
    by_recipient = {e["recipient"]: e for e in events}
    assert len(events) == 2  # the repeated report is stored once
    hard_data = by_recipient["hard@example.com"]["data"]
    assert (hard_data["bounce_type"], hard_data["status"], hard_data["source"]) == (
        "hard",
        "5.1.1",
        "smtp",
    )
    assert hard_data["bounce_subtype"] == "no_such_user"
    assert hard_data["diagnostic_code"].startswith("smtp; 550-5.1.1")
    soft_data = by_recipient["soft@example.com"]["data"]
    assert (soft_data["bounce_type"], soft_data["status"]) == ("soft", "4.4.4")
    complaints = api.http.get(
        f"/api/v1/campaigns/{campaign_id}/events", params={"type": "complained"}
    ).json()["events"]
    assert [(e["recipient"], e["data"]["complaint_type"]) for e in complaints] == [
        ("angry@example.com", "abuse")
    ]
    unsubscribed = api.http.get(
        f"/api/v1/campaigns/{campaign_id}/events", params={"type": "unsubscribed"}
    ).json()["events"]
    assert [(e["recipient"], e["data"]["how"]) for e in unsubscribed] == [
        ("leaving@example.com", "mailto")
    ]
    listed = api.http.get("/api/v1/suppressions").json()["suppressions"]
    assert sorted((s["email"], s["reason"]) for s in listed) == [
        ("angry@example.com", "complaint"),
        ("hard@example.com", "hard_bounce"),
        ("leaving@example.com", "unsubscribe"),
    ]
    with rt.db.read() as conn:
        assert inbound_counts(conn) == {
            "recorded": 4,
            "duplicate": 1,
            "unmatched": 1,
            "unparseable": 1,
            "ignored": 0,
        }
        (kept,) = recent_inbound_mail(conn, outcome="unparseable", limit=5)
        (unmatched,) = recent_inbound_mail(conn, outcome="unmatched", limit=5)
    assert kept.blob_key.startswith("inbound/") and rt.blobs.read_bytes(kept.blob_key) == garbage
    assert unmatched.envelope_to == forged and rt.blobs.exists(unmatched.blob_key)
    # Recorded mail is not kept: its events say what it said.
    kept_files = sorted(p.name for p in (tmp_path / "blobs" / "inbound").rglob("*.eml"))
    assert kept_files == sorted(Path(k).name for k in (kept.blob_key, unmatched.blob_key))


def test_bounces_from_an_imap_mailbox(server_factory: ServerFactory) -> None:
    rt, api = server_factory.start(bounce_address=BOUNCES)  # capture transport: VERP too
    campaign_id = send_campaign(api, ["hard@example.com", "angry@example.com"])
    verp = {}
    for email, message in sent_messages(rt).items():
        mailto = re.search(r"mailto:bounces\+u-([^@]+)@", str(message["List-Unsubscribe"]))
        assert mailto is not None
        verp[email] = f"bounces+{mailto.group(1)}@bounce.example.com"
    with ImapServer() as imap:
        # Delivered to a mailbox: the envelope recipient survives only as Delivered-To.
        imap.mailbox.add(
            f"Delivered-To: {verp['hard@example.com']}\r\n".encode()
            + fixture_to(
                "dsn-aol-mailbox-full-5.2.2.eml",
                "postroom-test@example.com",
                replace="bounce+8c8b98.c-user=aol.com@example.com",
            )
        )
        imap.mailbox.add(
            f"Delivered-To: {verp['angry@example.com']}\r\n".encode()
            + fixture("arf-aol-complaint.eml")
        )
        mailbox = parse_mailbox_url(imap.url)
        assert poll_once(rt, mailbox, timeout=10) == 2
        assert [m.seen for m in imap.mailbox.messages] == [True, True]
        fetched = imap.mailbox.fetched
        assert poll_once(rt, mailbox, timeout=10) == 0
        assert imap.mailbox.fetched == fetched  # nothing fetched again
    counts = api.status(campaign_id)["counts"]
    assert (counts["bounced"], counts["complained"]) == (1, 1)
    listed = api.http.get("/api/v1/suppressions").json()["suppressions"]
    assert sorted((s["email"], s["reason"]) for s in listed) == [
        ("angry@example.com", "complaint"),
        ("hard@example.com", "hard_bounce"),
    ]
    with rt.db.read() as conn:
        assert inbound_counts(conn)["recorded"] == 2


def test_the_listener_answers_451_when_it_cannot_record(tmp_path: Path) -> None:
    # A database without the schema: every write fails, as with a database that is down.
    settings = make_settings(
        f"sqlite:///{tmp_path / 'empty.db'}", tmp_path, free_port(), bounce_address=BOUNCES
    )
    rt = build_runtime(settings, var_dir=tmp_path / "var")
    port = free_port()
    listener = bounce_listener(rt, "127.0.0.1", port)
    listener.start()
    try:
        with (
            smtplib.SMTP("127.0.0.1", port) as smtp,
            pytest.raises(smtplib.SMTPDataError) as caught,
        ):
            smtp.sendmail("", [BOUNCES], fixture("dsn-delayed-warning-4.4.4.eml"))
        assert caught.value.smtp_code == 451
    finally:
        listener.stop()
        rt.close()


def test_the_listener_refuses_mail_over_the_size_limit(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        free_port(),
        bounce_address=BOUNCES,
        bounce_max_message_bytes=4096,
    )
    rt = build_runtime(settings, var_dir=tmp_path / "var")
    port = free_port()
    listener = bounce_listener(rt, "127.0.0.1", port)
    listener.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.ehlo()
            assert smtp.has_extn("size") and smtp.esmtp_features["size"] == "4096"
            small = fixture("dsn-delayed-warning-4.4.4.eml")
            assert len(small) < 4096
            smtp.sendmail("", [BOUNCES], small)
            big = small + (b"x" * 70 + b"\r\n") * 80
            # smtplib declares the size (SIZE=) when the server offers it: refused at MAIL.
            with pytest.raises(smtplib.SMTPSenderRefused) as declared:
                smtp.sendmail("", [BOUNCES], big)
            assert declared.value.smtp_code == 552
            # A client that does not declare it is refused at the end of DATA.
            smtp.mail("")
            smtp.rcpt(BOUNCES)
            code, _reply = smtp.data(big)
            assert code == 552
        with rt.db.read() as conn:
            assert sum(inbound_counts(conn).values()) == 1  # only the small one
    finally:
        listener.stop()
        rt.close()


def test_bounces_commands(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    env = cli_env(tmp_path, database_url)
    refused = postroom("bounces", "serve", env=env, cwd=tmp_path, check=False)
    assert refused.returncode != 0 and "POSTROOM_BOUNCE_ADDRESS" in refused.stderr
    env["POSTROOM_BOUNCE_ADDRESS"] = BOUNCES
    serving = subprocess.Popen(
        [POSTROOM, "bounces", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert serving.stdout is not None
        assert f"smtp://127.0.0.1:{port}" in serving.stdout.readline()  # listening
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.sendmail("", [BOUNCES], b"Subject: hello\r\n\r\nnot a report\r\n")
    finally:
        serving.send_signal(signal.SIGTERM)
        _, stderr = serving.communicate(timeout=30)
    assert serving.returncode == 0, stderr
    assert "unparseable" in stderr  # one log line per mail
    listed = json.loads(postroom("bounces", "list", "--json", env=env, cwd=tmp_path).stdout)
    assert listed["counts"]["unparseable"] == 1
    assert [r["outcome"] for r in listed["recent"]] == ["unparseable"]
    assert (tmp_path / "blobs" / listed["recent"][0]["blob_key"]).exists()
