"""A stand-in for Amazon S3: a bucket on moto's HTTP server on 127.0.0.1 (the server of
tests/support/moto_ses.py, which serves every service moto has).

moto imitates S3; it is not S3. It honours If-None-Match and If-Match, multipart uploads,
ranges and the SSE headers, but it does not check the signature or the expiry of presigned
URLs (tests/support/sigv4.py checks what S3 would) and it has no event notifications.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from postroom.blobs.s3 import S3BlobStore, S3Endpoint, S3Location
from tests.support.moto_ses import MOTO_REGION, use_moto_ses

BUCKET = "postroom-test"
PREFIX = "blobs"


@dataclass(frozen=True)
class MotoS3:
    """The bucket ``BUCKET`` on moto at ``endpoint_url``."""

    endpoint_url: str

    @property
    def storage_url(self) -> str:
        return f"s3://{BUCKET}/{PREFIX}"

    def client(self) -> Any:
        return S3Endpoint(endpoint_url=self.endpoint_url, path_style=True).client()

    def store(self, location: S3Location | None = None, **sizes: int) -> S3BlobStore:
        """A store on the bucket; ``sizes``: range_bytes and part_bytes, for tests."""
        location = location or S3Location.from_url(self.storage_url)
        return S3BlobStore(location, self.client(), **sizes)

    def head(self, key: str) -> dict[str, Any]:
        """HeadObject of a blob key under the test prefix."""
        head: dict[str, Any] = self.client().head_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")
        return head

    def object_keys(self) -> list[str]:
        listing = self.client().list_objects_v2(Bucket=BUCKET)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def multipart_uploads(self) -> list[str]:
        listing = self.client().list_multipart_uploads(Bucket=BUCKET)
        return [item["Key"] for item in listing.get("Uploads", [])]


def use_moto_s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint_url: str) -> MotoS3:
    """The AWS chain of this test pointed at moto with test credentials (nowhere else), and
    an empty bucket there."""
    use_moto_ses(monkeypatch, tmp_path, endpoint_url)
    s3 = MotoS3(endpoint_url)
    boto3.session.Session().client(
        "s3", region_name=MOTO_REGION, endpoint_url=endpoint_url
    ).create_bucket(Bucket=BUCKET)
    return s3
