"""POSTROOM_STORAGE_ENCRYPTION_KEYS: parsed into a keyring, refused with one clear line, and
generated into var/ when empty."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from postroom.config import load_settings, resolve_storage_keys
from postroom.errors import ConfigError
from postroom.storage_keys import new_key_entry, parse_keyring

K1 = base64.b64encode(b"\x01" * 32).decode()
K2 = base64.b64encode(b"\x02" * 32).decode()


def test_the_first_key_is_current_and_the_others_read() -> None:
    keyring = parse_keyring(f"k2:{K2}, k1:{K1}")
    assert keyring.current.key_id == "k2"
    assert keyring.find("k1") is not None and keyring.find("k3") is None
    assert "AQEB" not in repr(keyring)  # key material never reaches a log line


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (f"k1:{K1[:-2]}", "not valid base64"),
        ("k1:" + base64.b64encode(b"\x01" * 16).decode(), "16 bytes; it must be 32"),
        (f"k1:{K1},k1:{K2}", "'k1' appears twice"),
        (K1, "entry 1 is not id:base64"),
        (f"k1:{K1},bad id:{K2}", "entry 2 is not id:base64"),
        (f"{'x' * 33}:{K1}", "entry 1"),
        (f"k1:{K1},", "entry 2"),
    ],
)
def test_bad_keys_stop_start_up_naming_the_problem(value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(storage_encryption_keys=value)
    message = str(caught.value)
    assert message.startswith("POSTROOM_STORAGE_ENCRYPTION_KEYS: ") and problem in message
    assert K1 not in message and K2 not in message


def test_an_empty_setting_generates_one_key_into_var_once(tmp_path: Path) -> None:
    settings = load_settings(storage_encryption_keys="")
    first = resolve_storage_keys(settings, tmp_path / "var")
    again = resolve_storage_keys(settings, tmp_path / "var")
    assert first == again and first.current.key_id == "generated"
    path = tmp_path / "var" / "storage.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (tmp_path / "var").iterdir()] == ["storage.key"]


def test_a_generated_key_stays_readable_once_keys_are_set(tmp_path: Path) -> None:
    generated = resolve_storage_keys(load_settings(), tmp_path).current
    keyring = resolve_storage_keys(load_settings(storage_encryption_keys=f"k1:{K1}"), tmp_path)
    assert keyring.current.key_id == "k1"
    assert keyring.find("generated") == generated


def test_new_keys_are_accepted_by_the_setting() -> None:
    entry = new_key_entry("k2026")
    assert parse_keyring(entry).current.key_id == "k2026"
    assert new_key_entry("k2026") != entry
    with pytest.raises(ValueError):
        new_key_entry("no spaces")
