"""CaptureTransport and the outbox reader: atomic files, listing, reading, the capture:// URL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from postroom.clock import FrozenClock
from postroom.errors import ConfigError, NotFound
from postroom.transports import open_transport
from postroom.transports.base import Accepted, Envelope, Outcome, Transient
from postroom.transports.capture import CaptureTransport
from postroom.transports.outbox import file_stem, list_outbox, read_outbox_message

START = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def envelope(number: int, *, subject: str = "Hello", message_id: str | None = None) -> Envelope:
    data = (
        f"From: news@postroom.test\r\nTo: r{number}@example.test\r\nSubject: {subject}\r\n"
        f"\r\nMessage number {number}.\r\n"
    ).encode()
    return Envelope(
        sender="bounces@postroom.test",
        recipient=f"r{number}@example.test",
        data=data,
        message_id=message_id or f"<m{number}.c1@postroom.test>",
    )


def capture_all(transport: CaptureTransport, items: list[Envelope]) -> list[Outcome]:
    async def main() -> list[Outcome]:
        try:
            return await transport.send_many(items)
        finally:
            await transport.close()

    return asyncio.run(main())


def test_writes_the_message_byte_exact_and_its_envelope(tmp_path: Path) -> None:
    outbox = tmp_path / "var" / "outbox"  # created on first send
    sent = envelope(1)

    [outcome] = capture_all(CaptureTransport(outbox, clock=FrozenClock(START)), [sent])

    assert outcome == Accepted("250 captured", queue_id="<m1.c1@postroom.test>")
    assert (outbox / "m1.c1@postroom.test.eml").read_bytes() == sent.data
    assert json.loads((outbox / "m1.c1@postroom.test.json").read_text()) == {
        "sender": "bounces@postroom.test",
        "recipient": "r1@example.test",
        "message_id": "<m1.c1@postroom.test>",
        "captured_at": "2025-03-01T09:30:00+00:00",
    }
    assert sorted(path.name for path in outbox.iterdir()) == [
        "m1.c1@postroom.test.eml",
        "m1.c1@postroom.test.json",
    ]


def test_stores_what_a_relay_would_receive(tmp_path: Path) -> None:
    bare = Envelope("a@postroom.test", "b@example.test", b"Subject: x\n\nbody", "lf@postroom.test")

    capture_all(CaptureTransport(tmp_path), [bare])

    assert read_outbox_message(tmp_path, "lf@postroom.test") == b"Subject: x\r\n\r\nbody\r\n"


def test_concurrent_captures_leave_no_temporary_files(tmp_path: Path) -> None:
    items = [envelope(number) for number in range(40)]

    outcomes = capture_all(CaptureTransport(tmp_path), items)

    assert [outcome.queue_id for outcome in outcomes] == [  # type: ignore[union-attr]
        item.message_id for item in items
    ]
    assert len(list(tmp_path.iterdir())) == 80
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]


def test_same_message_id_replaces_the_earlier_capture(tmp_path: Path) -> None:
    first, second = envelope(1), envelope(2, message_id="<m1.c1@postroom.test>")

    capture_all(CaptureTransport(tmp_path), [first])
    capture_all(CaptureTransport(tmp_path), [second])

    assert read_outbox_message(tmp_path, "<m1.c1@postroom.test>") == second.data
    assert [entry.recipient for entry in list_outbox(tmp_path)] == ["r2@example.test"]


@pytest.mark.parametrize(
    ("message_id", "stem"),
    [
        ("<abc.123@postroom.test>", "abc.123@postroom.test"),
        ("<../../etc/passwd>", "_.._.._etc_passwd"),
        ("..", "_.."),
        ("", "_"),
        ("a b/c\\d\x00e", "a_b_c_d_e"),
        ("x" * 300, "x" * 200),
    ],
)
def test_message_ids_become_safe_file_names(message_id: str, stem: str) -> None:
    assert file_stem(message_id) == stem
    assert file_stem(stem) == stem


def test_a_hostile_message_id_stays_inside_the_outbox(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"

    capture_all(CaptureTransport(outbox), [envelope(1, message_id="<../../escaped>")])

    assert not (tmp_path / "escaped.eml").exists()
    assert read_outbox_message(outbox, "<../../escaped>") == envelope(1).data


def test_lists_newest_first_with_decoded_subjects(tmp_path: Path) -> None:
    clock = FrozenClock(START)
    transport = CaptureTransport(tmp_path, clock=clock)
    subjects = ["First", "=?utf-8?q?Caf=C3=A9_cr=C3=A8me?=", "Third"]
    for number, subject in enumerate(subjects):
        capture_all(transport, [envelope(number, subject=subject)])
        clock.advance(60)
        transport = CaptureTransport(tmp_path, clock=clock)

    entries = list_outbox(tmp_path)

    assert [entry.subject for entry in entries] == ["Third", "Café crème", "First"]
    newest = entries[0]
    assert newest.message_id == "<m2.c1@postroom.test>"
    assert (newest.sender, newest.recipient) == ("bounces@postroom.test", "r2@example.test")
    assert newest.captured_at == datetime(2025, 3, 1, 9, 32, tzinfo=UTC)
    assert newest.path == tmp_path / "m2.c1@postroom.test.eml"
    assert [entry.subject for entry in list_outbox(tmp_path, limit=2)] == ["Third", "Café crème"]


def test_listing_skips_half_written_and_foreign_files(tmp_path: Path) -> None:
    capture_all(CaptureTransport(tmp_path), [envelope(1)])
    (tmp_path / ".tmpabc.tmp").write_bytes(b"Subject: half")  # a crash before the rename
    (tmp_path / "orphan.eml").write_bytes(b"Subject: no envelope yet\r\n\r\n")
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "broken.eml").write_bytes(b"Subject: broken\r\n\r\n")
    (tmp_path / "notes.txt").write_text("hello")

    assert [entry.message_id for entry in list_outbox(tmp_path)] == ["<m1.c1@postroom.test>"]


def test_message_without_subject(tmp_path: Path) -> None:
    plain = Envelope("a@postroom.test", "b@example.test", b"To: b@example.test\r\n\r\nhi\r\n", "x")

    capture_all(CaptureTransport(tmp_path), [plain])

    assert list_outbox(tmp_path)[0].subject is None


def test_missing_outbox_lists_nothing(tmp_path: Path) -> None:
    assert list_outbox(tmp_path / "never-created") == []


def test_reads_by_message_id_or_by_file_stem(tmp_path: Path) -> None:
    capture_all(CaptureTransport(tmp_path), [envelope(7)])

    assert read_outbox_message(tmp_path, "<m7.c1@postroom.test>") == envelope(7).data
    assert read_outbox_message(tmp_path, "m7.c1@postroom.test") == envelope(7).data


@pytest.mark.parametrize("directory_name", ["outbox", "missing"])
def test_unknown_message_is_not_found(tmp_path: Path, directory_name: str) -> None:
    capture_all(CaptureTransport(tmp_path / "outbox"), [envelope(1)])

    with pytest.raises(NotFound) as caught:
        read_outbox_message(tmp_path / directory_name, "<nope@postroom.test>")

    assert caught.value.code == "message_not_found"
    assert caught.value.status == 404


def test_sends_after_close_are_refused(tmp_path: Path) -> None:
    transport = CaptureTransport(tmp_path)

    async def main() -> Outcome:
        await transport.close()
        return await transport.send(envelope(1))

    assert asyncio.run(main()) == Transient("transport_closed", transport_level=True)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_outbox_is_transport_level(tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")

    [outcome] = capture_all(CaptureTransport(blocker / "outbox"), [envelope(1)])

    assert isinstance(outcome, Transient)
    assert outcome.transport_level


def test_relative_capture_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    transport = open_transport("capture://var/outbox")

    assert isinstance(transport, CaptureTransport)
    assert transport.name == "capture"
    assert transport.directory == tmp_path / "var" / "outbox"


def test_absolute_capture_url(tmp_path: Path) -> None:
    transport = open_transport(f"capture://{tmp_path}/my%20outbox")

    assert isinstance(transport, CaptureTransport)
    assert transport.directory == tmp_path / "my outbox"


@pytest.mark.parametrize("url", ["capture://", "capture:///tmp/x?fsync=1", "outbox://var/outbox"])
def test_bad_capture_urls(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_transport(url)

    assert caught.value.variable == "POSTROOM_TRANSPORT_URL"
