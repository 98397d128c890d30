"""The S3 store's pure parts: its storage URL, keys under the prefix, ranged reading, S3
event notifications, and what a 403 to HEAD means (botocore's Stubber: no network)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from postroom.blobs.ranges import open_ranged
from postroom.blobs.s3 import S3BlobStore, S3Endpoint, S3Location
from postroom.blobs.s3_events import created_objects
from postroom.errors import ConfigError


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Test credentials, and nothing of this machine's AWS set-up (or its network)."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def test_the_storage_url_names_bucket_prefix_and_encryption() -> None:
    plain = S3Location.from_url("s3://files/prod/")
    assert (plain.bucket, plain.prefix, plain.sse, plain.kms_key_id) == (
        "files",
        "prod",
        "AES256",
        None,
    )
    assert plain.sse_params() == {"ServerSideEncryption": "AES256"}
    kms = S3Location.from_url("s3://files?sse=aws:kms&kms_key_id=alias/pr")
    assert kms.prefix == "" and kms.object_key("t/a.csv") == "t/a.csv"
    assert kms.sse_headers() == {
        "x-amz-server-side-encryption": "aws:kms",
        "x-amz-server-side-encryption-aws-kms-key-id": "alias/pr",
    }
    none = S3Location.from_url("s3://files/a/b?sse=none")
    assert none.sse_params() == {} and none.sse_headers() == {}
    assert none.object_key("t/x") == "a/b/t/x"


@pytest.mark.parametrize(
    "url",
    [
        "s3:///prefix",
        "s3://files?sse=aws:kms:dsse",
        "s3://files?kms_key_id=k",
        "s3://files?region=eu-west-1",
    ],
)
def test_a_bad_storage_url_stops_start_up_naming_the_variable(url: str) -> None:
    with pytest.raises(ConfigError) as bad:
        S3Location.from_url(url)
    assert bad.value.variable == "POSTROOM_STORAGE_URL"


def test_blob_keys_come_back_from_object_keys_under_the_prefix_only() -> None:
    location = S3Location.from_url("s3://files/prod")
    assert location.blob_key(location.object_key("t/ten/files/f.csv")) == "t/ten/files/f.csv"
    assert location.blob_key("production/t/x") is None
    assert location.blob_key("other/t/x") is None


@given(
    data=st.binary(max_size=3000),
    range_bytes=st.integers(1, 700),
    reads=st.lists(st.integers(1, 1500), min_size=1, max_size=20),
)
def test_ranged_reading_returns_the_bytes_whatever_the_sizes(
    data: bytes, range_bytes: int, reads: list[int]
) -> None:
    fetched: list[tuple[int, int]] = []

    def fetch(start: int, end: int) -> bytes:
        assert end - start + 1 <= range_bytes
        fetched.append((start, end))
        return data[start : end + 1]

    pieces = []
    with open_ranged(fetch, size=len(data), range_bytes=range_bytes) as stream:
        for n in reads * (len(data) + 1):
            chunk = stream.read(n)
            if not chunk:
                break
            pieces.append(chunk)
    assert b"".join(pieces) == data
    assert [start for start, _end in fetched] == list(range(0, len(data), range_bytes))


def test_a_range_cut_short_is_an_error_not_a_shorter_file() -> None:
    stream = open_ranged(lambda start, end: b"x", size=10, range_bytes=5)
    with pytest.raises(OSError):
        stream.read()


def test_s3_event_notifications_name_created_objects() -> None:
    event = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "files"}, "object": {"key": "prod/t/a+b%2B.csv"}},
            },
            {
                "eventName": "ObjectRemoved:Delete",
                "s3": {"bucket": {"name": "files"}, "object": {"key": "prod/t/gone.csv"}},
            },
        ]
    }
    assert created_objects(json.dumps(event)) == [("files", "prod/t/a b+.csv")]
    assert created_objects(json.dumps({"Event": "s3:TestEvent"})) == []
    for bad in ("nope", "[]", json.dumps({"Records": [{"eventName": "x"}]})):
        with pytest.raises(ValueError):
            created_objects(bad)


def test_a_403_to_head_is_taken_as_missing_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = S3Endpoint(endpoint_url="http://127.0.0.1:9", region="us-east-1").client()
    store = S3BlobStore(S3Location.from_url("s3://files/prod"), client)
    with Stubber(client) as stub:
        for _ in range(2):
            stub.add_client_error("head_object", "403", http_status_code=403)
        assert store.size("t/a.csv") is None
        assert not store.exists("t/a.csv")
    warnings = [r.message for r in caplog.records if "403" in r.message]
    assert len(warnings) == 1 and "s3:ListBucket" in warnings[0]


def test_other_head_errors_are_raised() -> None:
    from botocore.exceptions import ClientError

    client = S3Endpoint(endpoint_url="http://127.0.0.1:9", region="us-east-1").client()
    store = S3BlobStore(S3Location.from_url("s3://files"), client)
    with Stubber(client) as stub:
        stub.add_client_error("head_object", "500", http_status_code=500)
        with pytest.raises(ClientError):
            store.size("t/a.csv")


def test_reading_stops_at_close() -> None:
    stream = open_ranged(lambda start, end: bytes(end - start + 1), size=10, range_bytes=4)
    stream.close()
    with pytest.raises(ValueError):
        stream.read()
    assert isinstance(stream, io.BufferedReader)
