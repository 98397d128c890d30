"""Reading bounces, complaints and auto-replies from real-shaped samples
(tests/fixtures/bounces, see tests/fixtures/SOURCES.md) and from broken input."""

from __future__ import annotations

from pathlib import Path

from postroom.events.bounce_reports import read_report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bounces"


def _read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_postfix_user_unknown_is_hard() -> None:
    report = read_report(_read("dsn-postfix-permanent-5.1.1.eml"))
    assert report.kind == "bounce"
    [bounce] = report.bounces
    assert bounce.recipient == "asdfasdfasdfasdfasdfasdfewrqertrtyrthsfgdfgadfqeadvxzvz@gmail.com"
    assert (bounce.bounce_type, bounce.status, bounce.action) == ("hard", "5.1.1", "failed")
    assert bounce.subtype == "no_such_user"
    assert bounce.diagnostic_code is not None
    assert bounce.diagnostic_code.startswith("smtp; 550-5.1.1 The email account")
    assert "\n" not in bounce.diagnostic_code  # unfolded
    assert "foo@example.com" in report.verp_candidates  # X-Postfix-Sender, To


def test_mailbox_full_keeps_its_status_class() -> None:
    report = read_report(_read("dsn-aol-mailbox-full-5.2.2.eml"))
    [bounce] = report.bounces
    assert (bounce.recipient, bounce.status, bounce.subtype) == (
        "user@aol.com",
        "5.2.2",
        "mailbox_full",
    )
    assert bounce.bounce_type == "hard"  # 5.x.x: the receiving server gave up for good
    assert report.message_ids == ("4E326A95.3010907@example.com",)  # text/rfc822-headers part
    assert "bounce+8c8b98.c-user=aol.com@example.com" in report.verp_candidates


def test_delayed_is_soft() -> None:
    report = read_report(_read("dsn-delayed-warning-4.4.4.eml"))
    [bounce] = report.bounces
    assert (bounce.bounce_type, bounce.action, bounce.status) == ("soft", "delayed", "4.4.4")
    assert bounce.subtype == "deferred"


def test_rfc_example_failed_with_4xx_status_is_soft() -> None:
    report = read_report(_read("dsn-rfc-example-failed-after-retries-4.0.0.eml"))
    [bounce] = report.bounces
    assert (bounce.recipient, bounce.action, bounce.status) == (
        "foo@example.com",
        "failed",
        "4.0.0",
    )
    assert bounce.bounce_type == "soft"
    assert bounce.diagnostic_code == "smtp; 426 connection timed out"


def test_arf_complaint() -> None:
    report = read_report(_read("arf-aol-complaint.eml"))
    assert report.kind == "complaint"
    assert (report.feedback_type, report.user_agent) == ("abuse", "AOL SComp")
    assert report.message_ids == ("20101117174130.28884.55421@luna",)
    assert report.bounces == ()


def test_gmail_plain_text_bounce() -> None:
    report = read_report(_read("non-dsn-gmail-plaintext-bounce.eml"))
    assert report.kind == "bounce"
    [bounce] = report.bounces
    assert (bounce.recipient, bounce.bounce_type, bounce.subtype) == (
        "user@example.comm",
        "hard",
        "bad_domain",
    )


def test_plain_text_styles() -> None:
    exchange = (
        b"From: postmaster@corp.example\r\nTo: bounces+1-x@example.com\r\n"
        b"Subject: Undeliverable: Hello\r\n\r\n"
        b"Delivery has failed to these recipients or groups:\r\n\r\n"
        b"jane@corp.example\r\nThe recipient's mailbox is full and can't accept messages now.\r\n"
        b"Remote Server returned '554 5.2.2 mailbox full'\r\n"
    )
    report = read_report(exchange)
    assert report.kind == "bounce"
    assert report.bounces[0].subtype == "mailbox_full" and report.bounces[0].status == "5.2.2"
    assert report.bounces[0].recipient == "jane@corp.example"
    qmail = (
        b"From: MAILER-DAEMON@mx.example\r\nSubject: failure notice\r\n\r\n"
        b"Hi. This is the qmail-send program at mx.example.\r\n"
        b"<bob@mx.example>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n"
    )
    report = read_report(qmail)
    assert report.kind == "bounce"
    assert (report.bounces[0].bounce_type, report.bounces[0].subtype) == ("hard", "no_such_user")
    assert report.bounces[0].recipient == "bob@mx.example"
    quota = (
        b"From: Mail Delivery System <mailer-daemon@mx.example>\r\n"
        b"Subject: Mail delivery failed\r\n"
        b"\r\nann@mx.example: quota exceeded, try again later\r\n"
    )
    report = read_report(quota)
    assert (report.bounces[0].bounce_type, report.bounces[0].subtype) == ("soft", "mailbox_full")


def test_garbage_and_empty_are_unparseable() -> None:
    assert read_report(b"").kind == "unparseable"
    assert read_report(b"\r\n \r\n").kind == "unparseable"
    assert read_report(bytes(range(256)) * 20).kind == "unparseable"
    assert read_report(b"Subject: hello\r\n\r\nJust a note to you.\r\n").kind == "unparseable"


def test_dsn_without_recipient_is_unparseable() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nSomething went wrong.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n"
        b"\r\n--b--\r\n"
    )
    report = read_report(raw)
    assert report.kind == "unparseable"
    assert "no failed or delayed recipient" in report.detail


def test_auto_reply_is_not_a_bounce() -> None:
    raw = (
        b"From: Jane <jane@corp.example>\r\nTo: bounces+1-x@example.com\r\n"
        b"Subject: Automatic reply: Our news\r\nAuto-Submitted: auto-replied\r\n\r\n"
        b"I am out of the office until Monday.\r\n"
    )
    assert read_report(raw).kind == "auto_reply"
