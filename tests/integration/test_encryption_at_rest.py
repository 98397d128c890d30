"""Blobs are encrypted at rest through the real app: nothing of a recipient file is readable
on disk, a damaged file fails its campaign with its own code, and `postroom storage
rotate-key` moves every blob (plaintext ones from older installs too) to the current key."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from sqlalchemy import Table, select

from postroom.blobs.encryption import HEADER_BYTES, MAGIC, read_header
from postroom.blobs.local import LocalBlobStore
from postroom.db.tables import audit_log, files, templates
from postroom.runtime import Runtime
from postroom.storage_keys import parse_keyring
from tests.integration.conftest import ServerFactory
from tests.integration.test_campaign_flow import csv_bytes
from tests.integration.test_cli import cli_env, postroom
from tests.support.api_client import ApiClient

K1 = "k1:" + base64.b64encode(b"\x11" * 32).decode()
K2 = "k2:" + base64.b64encode(b"\x22" * 32).decode()
ROWS = [["email", "name"]] + [[f"person{i}.secret@example.com", f"Name {i}"] for i in range(300)]
ROWS += [["broken-address", "Refused Row"]]
TEMPLATE = "<p>Hello {{ name }}, a private offer</p>"


def start_campaign(api: ApiClient, file_id: str, template_id: str) -> dict[str, object]:
    created = api.create_campaign(template_id=template_id, file_id=file_id)
    assert created.status_code == 202, created.text
    return api.wait(created.json()["transaction_id"])


def stored_bytes(root: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()]


def local_store(root: Path, keys: str) -> LocalBlobStore:
    return LocalBlobStore(root, signing_key=b"-", base_url="http://x", keyring=parse_keyring(keys))


def blob_key(rt: Runtime, table: Table, row_id: str) -> str:
    with rt.db.read() as conn:
        key: str = conn.execute(select(table.c.blob_key).where(table.c.id == row_id)).scalar_one()
    return key


def test_a_campaign_leaves_no_recipient_readable_on_disk(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    rt, api = server_factory.start()  # no keys set: the embedded default encrypts too
    assert (tmp_path / "var" / "storage.key").exists()
    template_id = api.upload_template(TEMPLATE, "Hi {{ name }}")
    content = csv_bytes(ROWS)
    file_id = api.upload_file(content)
    status = start_campaign(api, file_id, template_id)
    assert status["status"] == "completed", status
    report = api.http.get(status["file"]["errors_url"])  # type: ignore[index]
    assert "broken-address" in report.text
    with rt.db.read() as conn:
        assert conn.execute(select(files.c.size).where(files.c.id == file_id)).scalar_one() == (
            len(content)
        )
    on_disk = stored_bytes(tmp_path / "blobs")
    assert len(on_disk) == 2 and all(data.startswith(MAGIC) for data in on_disk)
    for data in on_disk:
        assert b"@example.com" not in data and b"private offer" not in data
        assert b"secret" not in data and b"Refused" not in data


def test_a_file_damaged_on_disk_fails_its_campaign_with_file_unreadable(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    rt, api = server_factory.start(storage_encryption_keys=K1)
    template_id = api.upload_template(TEMPLATE, "Hi")
    file_id = api.upload_file(csv_bytes(ROWS))
    path = tmp_path / "blobs" / blob_key(rt, files, file_id)
    damaged = bytearray(path.read_bytes())
    damaged[HEADER_BYTES + 10] ^= 0x01
    path.write_bytes(bytes(damaged))
    status = start_campaign(api, file_id, template_id)
    assert status["status"] == "failed"
    error = status["error"]
    assert error["code"] == "file_unreadable", error  # type: ignore[index]
    assert "failed authentication" in error["message"]  # type: ignore[index]
    assert status["counts"]["total"] == 0  # type: ignore[index]


def test_a_template_damaged_on_disk_fails_its_messages_and_other_campaigns_send(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    rt, api = server_factory.start(storage_encryption_keys=K1)
    damaged_id = api.upload_template(TEMPLATE, "Hi")
    sound_id = api.upload_template("<p>Hi {{ name }}</p>", "Hello")
    file_id = api.upload_file(csv_bytes(ROWS[:21]))
    path = tmp_path / "blobs" / blob_key(rt, templates, damaged_id)
    damaged = bytearray(path.read_bytes())
    damaged[HEADER_BYTES + 5] ^= 0x01
    path.write_bytes(bytes(damaged))
    # Both campaigns send at once: the damaged template must not hold up the other one.
    broken = api.create_campaign(template_id=damaged_id, file_id=file_id)
    sound = api.create_campaign(template_id=sound_id, file_id=file_id)
    assert broken.status_code == 202 == sound.status_code, broken.text + sound.text

    sound_status = api.wait(sound.json()["transaction_id"])
    assert sound_status["status"] == "completed", sound_status
    assert sound_status["counts"]["sent"] == 20, sound_status
    broken_id = broken.json()["transaction_id"]
    broken_status = api.wait(broken_id)
    assert broken_status["status"] == "completed", broken_status
    assert broken_status["counts"]["failed"] == 20, broken_status
    assert broken_status["counts"]["sent"] == 0, broken_status
    for message in api.messages(broken_id):
        assert message["attempts"] == 0, message
        assert message["last_error"].startswith("blob_unreadable: "), message


def test_rotation_moves_every_blob_to_the_current_key(
    server_factory: ServerFactory, tmp_path: Path, database_url: str
) -> None:
    # The server already knows both keys (the configuration after rotation); the blobs are
    # first put under the old key, and one in plaintext as an install before encryption.
    rt, api = server_factory.start(storage_encryption_keys=f"{K2},{K1}")
    root = tmp_path / "blobs"
    template_id = api.upload_template(TEMPLATE, "Hi {{ name }}")
    content = csv_bytes(ROWS)
    old_file, legacy_file = api.upload_file(content), api.upload_file(content)
    old_store = LocalBlobStore(
        root, signing_key=b"-", base_url="http://x", keyring=parse_keyring(K1)
    )
    for key in (blob_key(rt, templates, template_id), blob_key(rt, files, old_file)):
        data = rt.blobs.read_bytes(key)
        (root / key).unlink()
        writer = old_store.writer(key, max_bytes=len(data))
        writer.write(data)
        writer.commit()
    (root / blob_key(rt, files, legacy_file)).write_bytes(content)

    env = cli_env(tmp_path, database_url, POSTROOM_STORAGE_ENCRYPTION_KEYS=f"{K2},{K1}")
    rotated = json.loads(postroom("storage", "rotate-key", "--json", env=env, cwd=tmp_path).stdout)
    assert rotated == {
        "storage_key": "k2",
        "rewrapped": 2,
        "encrypted": 1,
        "current": 0,
        "unreadable": 0,
        "gone": 0,
        "unreadable_blobs": [],
    }
    again = json.loads(postroom("storage", "rotate-key", "--json", env=env, cwd=tmp_path).stdout)
    assert (again["current"], again["rewrapped"], again["encrypted"]) == (3, 0, 0)

    for data in stored_bytes(root):
        assert read_header(data).key_id == "k2" and b"@example.com" not in data
    new_only = local_store(root, K2)
    assert new_only.read_bytes(blob_key(rt, files, legacy_file)) == content
    with rt.db.read() as conn:
        entries = conn.execute(
            select(audit_log).where(audit_log.c.action == "postroom storage rotate-key")
        ).all()
    assert len(entries) == 1 and entries[0].actor == "admin"
    assert entries[0].target["rewrapped"] == 2 and entries[0].target["encrypted"] == 1

    for file_id in (old_file, legacy_file):
        status = start_campaign(api, file_id, template_id)
        assert status["status"] == "completed", status
        assert status["counts"]["sent"] == 300  # type: ignore[index]


def test_rotation_names_blobs_under_a_key_it_does_not_have(
    server_factory: ServerFactory, tmp_path: Path, database_url: str
) -> None:
    _rt, api = server_factory.start(storage_encryption_keys=K1)
    api.upload_file(csv_bytes(ROWS))
    env = cli_env(tmp_path, database_url, POSTROOM_STORAGE_ENCRYPTION_KEYS=K2)
    result = postroom("storage", "rotate-key", env=env, cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert "unreadable   1" in result.stdout and "'k1'" in result.stderr
    bad = postroom(
        "storage",
        "rotate-key",
        env={**env, "POSTROOM_STORAGE_ENCRYPTION_KEYS": "k1:abc"},
        cwd=tmp_path,
        check=False,
    )
    assert bad.returncode == 2 and "POSTROOM_STORAGE_ENCRYPTION_KEYS" in bad.stderr
    entry = postroom("storage", "new-key", "k3", env=env, cwd=tmp_path).stdout.strip()
    assert parse_keyring(entry).current.key_id == "k3"
