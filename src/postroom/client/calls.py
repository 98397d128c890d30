"""The SDK's operations written once, without I/O: each is a generator that yields a
``Call`` (or a ``Pause``) and receives the parsed JSON answer; ``Client`` and
``AsyncClient`` only drive them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from postroom.client.errors import CampaignFailed, TemplateInvalid, WaitTimeout, api_error
from postroom.client.models import Campaign, Message, Suppression, Template, UploadedFile

CHUNK = 64 * 1024


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    params: dict[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # Chunks of a body to stream; a streamed body cannot be replayed, so it is not retried.
    content: Callable[[], Iterator[bytes]] | None = None
    authorised: bool = True
    idempotent: bool = True


@dataclass(frozen=True)
class Pause:
    seconds: float


Op = Generator["Call | Pause", Any, Any]


def decode(status: int, headers: Any, body: bytes) -> Any:
    """The JSON of a success, or the ``ApiError`` of a failure."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = body.decode("utf-8", "replace")
    if status >= 400:
        raise api_error(status, data, headers.get("x-request-id"))
    return data


def template_source(source: str | Path) -> bytes:
    """A ``Path``, or a str naming an existing file, is read; any other str is the markup."""
    if isinstance(source, Path):
        return source.read_bytes()
    if "<" not in source and "{" not in source and "\n" not in source:
        candidate = Path(source)
        if candidate.is_file():
            return candidate.read_bytes()
    return source.encode()


def upload_template(source: str | Path, name: str | None, subject: str, poll_interval: float) -> Op:
    data = template_source(source)
    if name is None:
        name = source.stem if isinstance(source, Path) else "template"
    ticket = yield Call(
        "POST", "/api/v1/templates/presigned-url", json={"name": name, "subject": subject}
    )
    yield Call(
        "PUT",
        ticket["upload_url"],
        headers=ticket["headers"],
        content=lambda: iter([data]),
        authorised=False,
        idempotent=False,
    )
    while True:
        template = Template.model_validate(
            (yield Call("GET", f"/api/v1/templates/{ticket['template_id']}"))
        )
        if template.status == "invalid":
            raise TemplateInvalid(template.id, list(template.errors))
        if template.status == "ready":
            return template
        yield Pause(poll_interval)


def _chunks(
    path: Path, total: int, on_progress: Callable[[int, int], None] | None
) -> Iterator[bytes]:
    sent = 0
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            sent += len(chunk)
            yield chunk
            if on_progress is not None:
                on_progress(sent, total)


def upload_file(
    path: str | Path, content_type: str, on_progress: Callable[[int, int], None] | None
) -> Op:
    path = Path(path)
    total = path.stat().st_size
    ticket = yield Call(
        "POST",
        "/api/v1/files/presigned-url",
        json={"filename": path.name, "content_type": content_type},
    )
    headers = {**ticket["headers"], "Content-Length": str(total)}
    receipt = yield Call(
        "PUT",
        ticket["upload_url"],
        headers=headers,
        content=lambda: _chunks(path, total, on_progress),
        authorised=False,
        idempotent=False,
    )
    if receipt is None:
        # The URL was the object store's own (S3): it answers with no receipt and takes any
        # size, so Postroom checks the upload now (413 upload_too_large, as a PUT to
        # Postroom would answer).
        receipt = yield Call("GET", f"/api/v1/files/{quote(ticket['file_id'])}")
    return UploadedFile(file_id=ticket["file_id"], size=receipt.get("size") or total)


def create_campaign(
    template_id: str,
    file_id: str,
    *,
    name: str | None,
    from_email: str | None,
    from_name: str | None,
    reply_to: str | None,
    send_at: datetime | str | None,
    metadata: dict[str, str] | None,
    idempotency_key: str | None,
    extra: dict[str, Any],
) -> Op:
    body: dict[str, Any] = {"template_id": template_id, "file_id": file_id, **extra}
    if name is not None:
        body["name"] = name
    if from_email is not None:
        body["from"] = {"email": from_email, "name": from_name}
    if reply_to is not None:
        body["reply_to"] = reply_to
    if send_at is not None:
        body["send_at"] = send_at.isoformat() if isinstance(send_at, datetime) else send_at
    if metadata:
        body["metadata"] = metadata
    key = idempotency_key or str(uuid.uuid4())
    # The key makes the POST safe to repeat: a retry returns the campaign already made.
    accepted = yield Call("POST", "/api/v1/campaigns", json=body, headers={"Idempotency-Key": key})
    return (yield from status(accepted["transaction_id"]))


def status(campaign_id: str) -> Op:
    return Campaign.model_validate(
        (yield Call("GET", f"/api/v1/campaigns/{quote(campaign_id)}/status"))
    )


def control(campaign_id: str, action: str) -> Op:
    return Campaign.model_validate(
        (yield Call("POST", f"/api/v1/campaigns/{campaign_id}/{action}"))
    )


def reschedule(campaign_id: str, send_at: datetime | str) -> Op:
    when = send_at.isoformat() if isinstance(send_at, datetime) else send_at
    answer = yield Call("PATCH", f"/api/v1/campaigns/{campaign_id}", json={"send_at": when})
    return Campaign.model_validate(answer)


def wait(
    campaign_id: str,
    on_progress: Callable[[Campaign], None] | None,
    timeout: float | None,
    poll_interval: float,
    now: Callable[[], float],
) -> Op:
    deadline = None if timeout is None else now() + timeout
    seen: Campaign | None = None
    while True:
        current: Campaign = yield from status(campaign_id)
        if on_progress is not None and current != seen:
            on_progress(current)
        seen = current
        if current.status == "failed":
            raise CampaignFailed(current)
        if current.finished:
            return current
        if deadline is not None and now() >= deadline:
            raise WaitTimeout(current)
        yield Pause(poll_interval)


def page(url: str, key: str, params: dict[str, Any], cursor: str | None) -> Op:
    query = {k: v for k, v in params.items() if v is not None}
    if cursor:
        query["cursor"] = cursor
    answer = yield Call("GET", url, params=query)
    return answer[key], answer.get("next_cursor")


PAGES: dict[str, tuple[str, type[Any]]] = {
    "messages": ("messages", Message),
    "campaigns": ("campaigns", Campaign),
    "suppressions": ("suppressions", Suppression),
}


def add_suppression(email: str, detail: str | None) -> Op:
    answer = yield Call("POST", "/api/v1/suppressions", json={"email": email, "detail": detail})
    return Suppression.model_validate(answer)


def remove_suppression(email: str) -> Op:
    yield Call("DELETE", f"/api/v1/suppressions/{quote(email, safe='@')}")
    return None
