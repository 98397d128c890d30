"""What S3 checks of a presigned (query-string SigV4) request and moto does not: that the
signature covers this method, path, query and signed headers, and that the URL has not
expired. Written from the SigV4 specification, for tests only."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlsplit


def presigned_request_holds(
    method: str, url: str, headers: dict[str, str], *, secret_key: str, now: datetime
) -> bool:
    """Whether S3 would take this request: every signed header sent with the signed value,
    the signature right, and ``now`` within the URL's lifetime."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if now > signed_at + timedelta(seconds=int(query["X-Amz-Expires"])):
        return False
    sent = {name.lower(): value.strip() for name, value in headers.items()}
    sent["host"] = parts.netloc
    signed_names = query["X-Amz-SignedHeaders"].split(";")
    if any(name not in sent for name in signed_names):
        return False
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(query.items())
        if k != "X-Amz-Signature"
    )
    canonical_request = "\n".join(
        [
            method,
            quote(parts.path, safe="/-_.~%"),
            canonical_query,
            "".join(f"{name}:{sent[name]}\n" for name in signed_names),
            ";".join(signed_names),
            "UNSIGNED-PAYLOAD",
        ]
    )
    _key_id, day, region, service, _end = query["X-Amz-Credential"].split("/")
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            query["X-Amz-Date"],
            f"{day}/{region}/{service}/aws4_request",
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret_key}".encode()
    for step in (day, region, service, "aws4_request"):
        key = hmac.new(key, step.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, query["X-Amz-Signature"])
