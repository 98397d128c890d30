"""S3 event notifications (as S3 sends them to SNS): the objects they say were created."""

from __future__ import annotations

import json
from urllib.parse import unquote_plus


def created_objects(message: str) -> list[tuple[str, str]]:
    """The (bucket, object key) of each ObjectCreated record in an S3 event notification;
    none for S3's test event or other event types. Raises ValueError for anything that is
    not an S3 event notification."""
    try:
        event = json.loads(message)
    except ValueError:
        raise ValueError("not JSON") from None
    if not isinstance(event, dict):
        raise ValueError("not a JSON object")
    if event.get("Event") == "s3:TestEvent":
        return []
    records = event.get("Records")
    if not isinstance(records, list):
        raise ValueError("no Records")
    created = []
    for record in records:
        try:
            name = record["eventName"]
            bucket = record["s3"]["bucket"]["name"]
            # S3 sends keys URL-encoded, with "+" for a space.
            key = unquote_plus(record["s3"]["object"]["key"])
        except (KeyError, TypeError):
            raise ValueError("a record without eventName, bucket or key") from None
        if isinstance(name, str) and name.startswith("ObjectCreated:"):
            created.append((str(bucket), key))
    return created
