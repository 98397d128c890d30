"""The blob store contract, run against the local store (files on disk, encrypted) and the
S3 store on moto's S3 server (a stand-in for S3 on 127.0.0.1, not S3 itself): the same
round trips, streaming reads, once-only commits and presigned uploads over real HTTP."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from postroom.blobs import BlobStore
from postroom.blobs.local import LocalBlobStore
from postroom.blobs.s3 import MIN_PART_BYTES, S3BlobStore, S3Location
from postroom.db.engine import Database
from postroom.db.migrate import migrate
from postroom.errors import Conflict, NotFound, PayloadTooLarge
from postroom.runtime import Runtime, build_runtime
from postroom.storage_keys import parse_keyring
from tests.conftest import make_settings
from tests.support.live_server import LiveServer, free_port
from tests.support.moto_s3 import BUCKET, PREFIX, MotoS3
from tests.support.sigv4 import presigned_request_holds

KEYRING = parse_keyring("k1:" + base64.b64encode(b"\x11" * 32).decode())
RANGE_BYTES = 1000
#: The ranges of the contract tests: odd, so that reads and ranges rarely line up.
CONTRACT_RANGE_BYTES = 256 * 1024 + 1
#: Large enough for a multipart upload of three parts on S3.
LARGE_BYTES = 2 * MIN_PART_BYTES + 12_345
KEY = "t/ten_1/files/file_1.csv"


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """A store with small ranges and the smallest parts, so that tests cross their edges."""
    if request.param == "local":
        return LocalBlobStore(
            tmp_path / "blobs", signing_key=b"k", base_url="http://127.0.0.1:9", keyring=KEYRING
        )
    moto_s3: MotoS3 = request.getfixturevalue("moto_s3")
    return moto_s3.store(range_bytes=CONTRACT_RANGE_BYTES, part_bytes=MIN_PART_BYTES)


def write(store: BlobStore, key: str, data: bytes, *, step: int = 64 * 1024) -> int:
    writer = store.writer(key, max_bytes=len(data) + 10)
    for start in range(0, len(data), step):
        writer.write(data[start : start + step])
    return writer.commit()


def test_a_blob_round_trips(store: BlobStore) -> None:
    data = os.urandom(5000)
    assert not store.exists(KEY) and store.size(KEY) is None
    assert write(store, KEY, data, step=777) == 5000
    assert store.exists(KEY) and store.size(KEY) == 5000
    assert store.read_bytes(KEY) == data


def test_an_empty_blob_round_trips(store: BlobStore) -> None:
    assert write(store, KEY, b"") == 0
    assert store.size(KEY) == 0
    assert store.read_bytes(KEY) == b""


def test_a_large_blob_streams_back_whatever_the_read_sizes(store: BlobStore) -> None:
    data = os.urandom(LARGE_BYTES)
    write(store, KEY, data, step=1024 * 1024 + 3)
    pieces, sizes = [], [1, 999, 1000, 1001, 7, 65_537, 2_000_003]
    with store.open(KEY) as stream:
        while chunk := stream.read(sizes[len(pieces) % len(sizes)]):
            pieces.append(chunk)
    assert b"".join(pieces) == data
    assert all(len(piece) == sizes[n % len(sizes)] for n, piece in enumerate(pieces[:-1]))


def test_the_s3_store_reads_in_ranges_and_only_what_is_read(moto_s3: MotoS3) -> None:
    store = moto_s3.store(range_bytes=RANGE_BYTES)
    data = os.urandom(10 * RANGE_BYTES + 5)
    write(store, KEY, data)
    ranges: list[str] = []
    store.client.meta.events.register(
        "before-call.s3.GetObject", lambda params, **_: ranges.append(params["headers"]["Range"])
    )
    with store.open(KEY) as stream:
        assert stream.read(10) == data[:10]
    assert ranges == ["bytes=0-999"]
    with store.open(KEY) as stream:
        assert stream.read() == data
    last = len(data) - 1
    assert ranges[1:] == [f"bytes={n * 1000}-{min(n * 1000 + 999, last)}" for n in range(11)]


def test_an_object_replaced_while_read_is_refused_not_mixed(moto_s3: MotoS3) -> None:
    from postroom.errors import BlobUnreadable

    store = moto_s3.store(range_bytes=RANGE_BYTES)
    write(store, KEY, b"a" * 3000)
    with store.open(KEY) as stream:
        assert stream.read(1000) == b"a" * 1000
        moto_s3.client().put_object(Bucket=BUCKET, Key=f"{PREFIX}/{KEY}", Body=b"b" * 3000)
        with pytest.raises(BlobUnreadable):
            stream.read()


@pytest.mark.parametrize("size", [100, LARGE_BYTES], ids=["small", "multipart"])
def test_an_aborted_writer_leaves_nothing(store: BlobStore, size: int) -> None:
    writer = store.writer(KEY, max_bytes=size)
    writer.write(os.urandom(size))
    writer.abort()
    writer.abort()  # twice is harmless: callers abort on any error
    assert not store.exists(KEY)
    assert_nothing_left(store)


@pytest.mark.parametrize("size", [100, LARGE_BYTES], ids=["small", "multipart"])
def test_a_writer_refuses_more_than_its_limit_and_leaves_nothing(
    store: BlobStore, size: int
) -> None:
    writer = store.writer(KEY, max_bytes=size)
    writer.write(b"x" * size)
    with pytest.raises(PayloadTooLarge) as refused:
        writer.write(b"x")
    assert refused.value.code == "upload_too_large"
    writer.abort()
    assert not store.exists(KEY)
    assert_nothing_left(store)


@pytest.mark.parametrize("size", [100, LARGE_BYTES], ids=["small", "multipart"])
def test_a_second_commit_to_a_key_is_a_conflict(store: BlobStore, size: int) -> None:
    first, second = store.writer(KEY, max_bytes=size), store.writer(KEY, max_bytes=size)
    first.write(b"1" * size)
    second.write(b"2" * size)
    assert first.commit() == size
    with pytest.raises(Conflict) as refused:
        second.commit()
    assert refused.value.code == "already_uploaded"
    assert store.read_bytes(KEY) == b"1" * size
    assert_nothing_left(store)


def test_missing_blobs_and_delete(store: BlobStore) -> None:
    assert store.size(KEY) is None and not store.exists(KEY)
    with pytest.raises(NotFound) as missing:
        store.open(KEY)
    assert missing.value.code == "blob_not_found"
    store.delete(KEY)  # deleting what is not there is not an error
    write(store, KEY, b"abc")
    store.delete(KEY)
    assert store.size(KEY) is None
    write(store, KEY, b"again")  # the key is free again
    assert store.read_bytes(KEY) == b"again"


def assert_nothing_left(store: BlobStore) -> None:
    if isinstance(store, LocalBlobStore):
        leftovers = [p.name for p in store.root.rglob("*") if p.is_file() and ".part" in p.name]
        assert leftovers == []
    else:
        assert isinstance(store, S3BlobStore)
        listing = store.client.list_multipart_uploads(Bucket=store.location.bucket)
        assert listing.get("Uploads", []) == []


# Server-side encryption on S3 -----------------------------------------------------------


@pytest.mark.parametrize("size", [100, LARGE_BYTES], ids=["small", "multipart"])
def test_every_s3_write_asks_for_server_side_encryption(moto_s3: MotoS3, size: int) -> None:
    write(moto_s3.store(), KEY, b"x" * size)
    assert moto_s3.head(KEY)["ServerSideEncryption"] == "AES256"


def test_sse_kms_with_a_key_of_ones_own(moto_s3: MotoS3) -> None:
    location = S3Location.from_url(f"{moto_s3.storage_url}?sse=aws:kms&kms_key_id=alias/postroom")
    store = moto_s3.store(location)
    write(store, KEY, b"secret")
    head = moto_s3.head(KEY)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith("alias/postroom")
    ticket = store.presign_put(
        "other", content_type="text/csv", max_bytes=10, expires_at=datetime.now(UTC)
    )
    assert ticket.headers["x-amz-server-side-encryption"] == "aws:kms"
    assert ticket.headers["x-amz-server-side-encryption-aws-kms-key-id"] == "alias/postroom"


# Presigned uploads over real HTTP -------------------------------------------------------


@dataclass
class Served:
    """A store behind the real app (the local store's uploads go through it)."""

    rt: Runtime
    kind: str

    @property
    def blobs(self) -> BlobStore:
        return self.rt.blobs


@pytest.fixture(params=["local", "s3"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    database_url = f"sqlite:///{tmp_path / 'postroom.db'}"
    db = Database(database_url)
    migrate(db)
    db.dispose()
    overrides: dict[str, Any] = {}
    if request.param == "s3":
        moto_s3: MotoS3 = request.getfixturevalue("moto_s3")
        overrides = {
            "storage_url": moto_s3.storage_url,
            "s3_endpoint_url": moto_s3.endpoint_url,
            "s3_path_style": True,
        }
    port = free_port()
    rt = build_runtime(make_settings(database_url, tmp_path, port, **overrides), var_dir=tmp_path)
    server = LiveServer(rt, port, with_worker=False)
    server.start()
    try:
        yield Served(rt, request.param)
    finally:
        server.stop()
        rt.close()


def ticket_for(served: Served, *, max_bytes: int = 100, seconds: int = 600) -> Any:
    return served.blobs.presign_put(
        KEY,
        content_type="text/csv",
        max_bytes=max_bytes,
        expires_at=datetime.now(UTC) + timedelta(seconds=seconds),
    )


def test_a_presigned_upload_lands_once(served: Served) -> None:
    ticket = ticket_for(served)
    assert ticket.method == "PUT"
    first = httpx.put(ticket.url, content=b"email\na@example.com\n", headers=ticket.headers)
    assert first.status_code in (200, 201), first.text
    assert served.blobs.read_bytes(KEY) == b"email\na@example.com\n"
    again = httpx.put(ticket.url, content=b"email\nb@example.com\n", headers=ticket.headers)
    # Local: 409 already_uploaded; S3: 412, the signed If-None-Match: * did not hold.
    assert again.status_code == (409 if served.kind == "local" else 412), again.text
    assert served.blobs.read_bytes(KEY) == b"email\na@example.com\n"


def test_a_presigned_upload_takes_its_content_type_only(served: Served) -> None:
    ticket = ticket_for(served)
    wrong = {**ticket.headers, "Content-Type": "text/html"}
    if served.kind == "local":
        assert httpx.put(ticket.url, content=b"<p>", headers=wrong).status_code == 415
        assert not served.blobs.exists(KEY)
        return
    # moto does not check signatures; S3 does, over every signed header.
    now = datetime.now(UTC)
    assert presigned_request_holds("PUT", ticket.url, ticket.headers, secret_key="testing", now=now)
    assert not presigned_request_holds("PUT", ticket.url, wrong, secret_key="testing", now=now)
    unencrypted = {k: v for k, v in ticket.headers.items() if "encryption" not in k}
    assert not presigned_request_holds(
        "PUT", ticket.url, unencrypted, secret_key="testing", now=now
    )
    overwriting = {k: v for k, v in ticket.headers.items() if k != "If-None-Match"}
    assert not presigned_request_holds(
        "PUT", ticket.url, overwriting, secret_key="testing", now=now
    )


def test_a_presigned_upload_expires(served: Served) -> None:
    if served.kind == "local":
        expired = ticket_for(served, seconds=-1)
        refused = httpx.put(expired.url, content=b"email\n", headers=expired.headers)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "url_expired"
        return
    ticket = ticket_for(served, seconds=600)
    now = datetime.now(UTC)
    holds = [
        presigned_request_holds("PUT", ticket.url, ticket.headers, secret_key="testing", now=at)
        for at in (now + timedelta(seconds=590), now + timedelta(seconds=610))
    ]
    assert holds == [True, False]


def test_a_presigned_upload_is_limited_in_size(served: Served) -> None:
    ticket = ticket_for(served, max_bytes=10)
    response = httpx.put(ticket.url, content=b"x" * 11, headers=ticket.headers)
    if served.kind == "local":
        assert response.status_code == 413
        assert not served.blobs.exists(KEY)
    else:
        # A presigned PUT cannot carry a size limit: the object lands, and Postroom checks
        # its size when it notices the upload (tests/integration/test_s3_storage.py).
        assert response.status_code == 200
        assert served.blobs.size(KEY) == 11
