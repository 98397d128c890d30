"""The real app with POSTROOM_STORAGE_URL=s3://… on moto's S3 server (a stand-in for S3 on
127.0.0.1, not S3): clients upload straight to the bucket, Postroom notices the uploads when
they are used or when S3's event notifications (through SNS) say so, refuses those over the
limit, and is ready."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlsplit

import httpx
import pytest
from sqlalchemy import select

from postroom.client import ApiError, Client
from postroom.db.tables import files, templates
from postroom.runtime import Runtime
from postroom.tenants.service import create_tenant
from tests.integration.conftest import ServerFactory
from tests.integration.test_cli import cli_env, postroom
from tests.support.moto_s3 import BUCKET, PREFIX, MotoS3
from tests.support.sns_signing import SnsSigner, fixture, notification

HTML = "<p>Hello {{ first_name }}</p>"
ROWS = "email,first_name\n" + "".join(f"p{i}@example.com,P{i}\n" for i in range(30))


def start(factory: ServerFactory, moto_s3: MotoS3, **overrides: Any) -> tuple[Runtime, str]:
    rt, _api = factory.start(
        storage_url=moto_s3.storage_url,
        s3_endpoint_url=moto_s3.endpoint_url,
        s3_path_style=True,
        **overrides,
    )
    with rt.db.write() as conn:
        _tenant, key = create_tenant(conn, "s3-tenant", rt.clock.now())
    return rt, key


def test_a_campaign_goes_through_s3(
    server_factory: ServerFactory, moto_s3: MotoS3, tmp_path: Path
) -> None:
    rt, key = start(server_factory, moto_s3)
    (tmp_path / "list.csv").write_text(ROWS)
    with Client(rt.settings.base_url, key) as pr:
        template = pr.upload_template(HTML, subject="Hi {{ first_name }}")
        upload = pr.upload_file(tmp_path / "list.csv")
        campaign = pr.create_campaign(template.id, upload.id, from_email="team@example.com")
        done = pr.wait(campaign.id, poll_interval=0.05)
    assert template.status == "ready" and template.variables == ["first_name"]
    assert upload.size == len(ROWS)
    assert done.status == "completed" and done.counts.sent == 30 == done.counts.total
    # Both uploads went to the bucket, encrypted by S3, and nothing of them stayed on disk.
    keys = moto_s3.object_keys()
    assert {k.rsplit(".", 1)[-1] for k in keys} == {"html", "csv"}
    assert all(k.startswith(f"{PREFIX}/t/") for k in keys)
    for object_key in keys:
        assert moto_s3.head(object_key.removeprefix(f"{PREFIX}/"))["ServerSideEncryption"]
    # S3 encrypts on its side: no local storage key was made.
    assert not (tmp_path / "var" / "storage.key").exists()
    assert not (tmp_path / "blobs").exists()


def test_uploads_are_noticed_when_the_campaign_is_created(
    server_factory: ServerFactory, moto_s3: MotoS3
) -> None:
    rt, key = start(server_factory, moto_s3)
    http = httpx.Client(base_url=rt.settings.base_url, headers={"Authorization": f"Bearer {key}"})
    template = http.post("/api/v1/templates/presigned-url", json={"name": "t", "subject": "Hi"})
    sheet = http.post("/api/v1/files/presigned-url", json={"filename": "list.csv"})
    for ticket, body in ((template.json(), HTML), (sheet.json(), ROWS)):
        assert ticket["method"] == "PUT" and ticket["upload_url"].startswith(moto_s3.endpoint_url)
        put = httpx.put(ticket["upload_url"], content=body.encode(), headers=ticket["headers"])
        assert put.status_code == 200, put.text
    template_id, file_id = template.json()["template_id"], sheet.json()["file_id"]
    assert statuses(rt, template_id, file_id) == ("pending_upload", "pending_upload")
    created = http.post("/api/v1/campaigns", json={"template_id": template_id, "file_id": file_id})
    assert created.status_code == 202, created.text
    assert statuses(rt, template_id, file_id) == ("ready", "uploaded")
    # Postroom's own upload endpoint is not used with S3.
    assert httpx.put(f"{rt.settings.base_url}/uploads/x", content=b"x").status_code == 404
    http.close()


def statuses(rt: Runtime, template_id: str, file_id: str) -> tuple[str, str]:
    with rt.db.read() as conn:
        template = conn.execute(select(templates.c.status).where(templates.c.id == template_id))
        file = conn.execute(select(files.c.status).where(files.c.id == file_id))
        return template.scalar_one(), file.scalar_one()


def test_an_oversized_upload_is_deleted_and_refused_with_the_local_code(
    server_factory: ServerFactory, moto_s3: MotoS3, tmp_path: Path
) -> None:
    rt, key = start(server_factory, moto_s3, file_max_bytes=100, template_max_bytes=20)
    (tmp_path / "list.csv").write_text(ROWS)
    with Client(rt.settings.base_url, key) as pr:
        with pytest.raises(ApiError) as big_file:
            pr.upload_file(tmp_path / "list.csv")
        with pytest.raises(ApiError) as big_template:
            pr.upload_template(HTML * 2, subject="Hi")
    for refused, limit in ((big_file, 100), (big_template, 20)):
        assert refused.value.status == 413 and refused.value.code == "upload_too_large"
        assert refused.value.details == {"max_bytes": limit}
    assert moto_s3.object_keys() == []
    with rt.db.read() as conn:
        assert conn.execute(select(files.c.status)).scalars().all() == ["pending_upload"]


def test_an_oversized_file_fails_the_campaign_request(
    server_factory: ServerFactory, moto_s3: MotoS3
) -> None:
    rt, key = start(server_factory, moto_s3, file_max_bytes=100)
    http = httpx.Client(base_url=rt.settings.base_url, headers={"Authorization": f"Bearer {key}"})
    with Client(rt.settings.base_url, key) as pr:
        template_id = pr.upload_template(HTML, subject="Hi").id
    ticket = http.post("/api/v1/files/presigned-url", json={"filename": "list.csv"}).json()
    httpx.put(ticket["upload_url"], content=ROWS.encode(), headers=ticket["headers"])
    body = {"template_id": template_id, "file_id": ticket["file_id"]}
    refused = http.post("/api/v1/campaigns", json=body)
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"]["code"] == "upload_too_large"
    # Deleted: the URL, while it lasts, takes a smaller file instead.
    again = httpx.put(
        ticket["upload_url"], content=b"email\na@example.com\n", headers=ticket["headers"]
    )
    assert again.status_code == 200
    assert http.post("/api/v1/campaigns", json=body).status_code == 202
    http.close()


def test_ready_with_s3_storage(server_factory: ServerFactory, moto_s3: MotoS3) -> None:
    rt, _key = start(server_factory, moto_s3)
    ready = httpx.get(f"{rt.settings.base_url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["blob_store"] == "ok"
    assert moto_s3.object_keys() == []  # the probe object is gone again


def s3_event(object_keys: list[str], bucket: str = BUCKET) -> dict[str, Any]:
    """An S3 event notification as S3 publishes it to SNS (keys URL-encoded, "+" for " ")."""
    records = [
        {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {
                "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                "object": {"key": quote_plus(key, safe="/"), "size": 1},
            },
        }
        for key in object_keys
    ]
    return notification({"Records": records})


def post_hook(rt: Runtime, message: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{rt.settings.base_url}/hooks/s3",
        content=json.dumps(message).encode(),
        headers={"Content-Type": "text/plain; charset=UTF-8"},
    )


def test_s3_event_notifications_notice_uploads_at_once(
    server_factory: ServerFactory, moto_s3: MotoS3
) -> None:
    rt, key = start(server_factory, moto_s3, file_max_bytes=100)
    signer = SnsSigner()
    rt.sns_fetch = signer.fetch
    http = httpx.Client(base_url=rt.settings.base_url, headers={"Authorization": f"Bearer {key}"})
    small, big = (
        http.post("/api/v1/files/presigned-url", json={"filename": "list.csv"}).json()
        for _ in range(2)
    )
    template = http.post("/api/v1/templates/presigned-url", json={"name": "t", "subject": "Hi"})
    for ticket, body in ((small, "email\n"), (big, ROWS), (template.json(), HTML)):
        httpx.put(ticket["upload_url"], content=body.encode(), headers=ticket["headers"])
    keys = [urlsplit(t["upload_url"]).path.split("/", 2)[2] for t in (small, big, template.json())]
    # Unsigned, or about another bucket: nothing is noticed.
    assert post_hook(rt, s3_event(keys)).status_code == 403
    other = post_hook(rt, signer.sign(s3_event(keys, bucket="someone-else")))
    assert other.json() == {"type": "Notification", "noticed": 0, "refused": 0}

    answer = post_hook(rt, signer.sign(s3_event([*keys, f"{PREFIX}/t/no/such.csv"])))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"type": "Notification", "noticed": 2, "refused": 1}
    assert statuses(rt, template.json()["template_id"], small["file_id"]) == ("ready", "uploaded")
    assert statuses(rt, template.json()["template_id"], big["file_id"])[1] == "pending_upload"
    assert len(moto_s3.object_keys()) == 2  # the oversized one was deleted
    # S3's test event, and a subscription confirmation (fetched from SNS only).
    test_event = notification({"Service": "Amazon S3", "Event": "s3:TestEvent"})
    assert post_hook(rt, signer.sign(test_event)).json()["noticed"] == 0
    confirmation = post_hook(rt, signer.sign(fixture("sns-http-subscription-confirmation.json")))
    assert confirmation.json() == {"type": "SubscriptionConfirmation", "confirmed": True}
    not_s3 = post_hook(rt, signer.sign(notification({"eventType": "Bounce"})))
    assert not_s3.status_code == 400 and not_s3.json()["error"]["code"] == "unknown_s3_event"
    http.close()


def test_the_s3_hook_is_not_there_with_local_storage(server_factory: ServerFactory) -> None:
    rt, _api = server_factory.start()
    assert post_hook(rt, s3_event(["x"])).status_code == 404


def test_rotate_key_says_it_does_not_apply_to_s3(
    moto_s3: MotoS3, tmp_path: Path, database_url: str
) -> None:
    env = cli_env(tmp_path, database_url, POSTROOM_STORAGE_URL=moto_s3.storage_url)
    result = postroom("storage", "rotate-key", env=env, cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "file:// storage only" in result.stderr and "encrypted by S3" in result.stderr
