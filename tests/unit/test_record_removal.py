"""Rewriting a recipient file without one address's records (files/record_removal.py)."""

from __future__ import annotations

import codecs
from pathlib import Path

from postroom.blobs.local import LocalBlobStore
from postroom.files.address_redaction import redact_json, redact_url
from postroom.files.record_removal import address_pattern, erase_from_blob
from postroom.observability.redaction import redact

PATTERN = address_pattern(["ann@example.com"])


def rewrite(tmp_path: Path, data: bytes) -> bytes | None:
    store = LocalBlobStore(tmp_path, signing_key=b"k", base_url="http://127.0.0.1")
    writer = store.writer("in.csv", max_bytes=10**6)
    writer.write(data)
    writer.commit()
    if not erase_from_blob(store, "in.csv", "out.csv", PATTERN, 10**6):
        return None
    return store.read_bytes("out.csv")


def test_records_with_the_address_become_blank_lines(tmp_path: Path) -> None:
    data = (
        b'email,note\r\nbob@example.com,"two\r\nlines ANN@Example.com"\r\n'
        b"joann@example.com,x\r\nann@example.com,y\r\nann@example.com.au,z"
    )
    assert rewrite(tmp_path, data) == (
        b"email,note\r\n\r\njoann@example.com,x\r\n\r\nann@example.com.au,z"
    )


def test_nothing_is_written_without_the_address(tmp_path: Path) -> None:
    assert rewrite(tmp_path, b"email\nbob@example.com\n") is None
    assert not (tmp_path / "out.csv").exists()


def test_other_encodings_come_back_as_utf8(tmp_path: Path) -> None:
    utf16 = codecs.BOM_UTF16_LE + "email,name\nann@example.com,Zoë\nbo@example.com,Zoë\n".encode(
        "utf-16-le"
    )
    assert rewrite(tmp_path / "16", utf16) == "\ufeffemail,name\n\nbo@example.com,Zoë\n".encode()
    latin = "email,name\nbo@example.com,Zoë\nann@example.com,x\n".encode("cp1252")
    assert rewrite(tmp_path / "1252", latin) == "email,name\nbo@example.com,Zoë\n\n".encode()


def test_redaction_of_json_and_logs() -> None:
    data = {"to": ["Ann@example.com"], "diag": "550 <ann@example.com> unknown", "n": 1}
    assert redact_json(data, PATTERN) == {
        "to": ["[erased]"],
        "diag": "550 <[erased]> unknown",
        "n": 1,
    }
    line = '"DELETE /api/v1/recipients/ann%40example.com HTTP/1.1" 200'
    assert "ann" not in redact(line)


def test_redact_url_takes_the_address_out_of_whole_url_parts_only() -> None:
    spellings = ["Ann@Example.com", "ann@example.com"]
    assert redact_url(
        "https://s.example/u/ann@example.com/x?e=ANN%40example.com#ann@example.com", spellings
    ) == ("https://s.example/u/[erased]/x?e=[erased]#[erased]")
    assert redact_url("mailto:ann@example.com", spellings) == "mailto:[erased]"
    assert redact_url("https://s.example/p?ann@example.com&k=1", spellings) == (
        "https://s.example/p?[erased]&k=1"
    )
    for untouched in (
        "https://s.example/?e=joann@example.com",  # a longer address
        "https://s.example/?e=ann@example.com.au",
        "https://s.example/?x=1&y",
        "https://s.example",
    ):
        assert redact_url(untouched, spellings) == untouched
