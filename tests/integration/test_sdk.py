"""The Python SDK against the real HTTP app (and, for retries, small real local servers)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from postroom.client import (
    AsyncClient,
    Client,
    NotFound,
    TemplateInvalid,
    TransportError,
    Unauthorized,
)
from postroom.runtime import Runtime
from postroom.tenants.service import create_tenant
from tests.support.live_server import LiveServer, free_port
from tests.support.scripted_http import ScriptedHttp
from tests.support.smtp_relay import SmtpRelay

HTML = "<p>Hello {{ first_name }}</p>"
ROWS = "email,first_name\n" + "".join(f"p{i}@example.com,P{i}\n" for i in range(40))


def api_key(rt: Runtime) -> str:
    with rt.db.write() as conn:
        _tenant, key = create_tenant(conn, "acme", rt.clock.now())
    return key


def test_whole_flow(
    relay_server: tuple[Runtime, LiveServer], smtp_relay: SmtpRelay, tmp_path: Path
) -> None:
    rt, server = relay_server
    (tmp_path / "welcome.html").write_text(HTML)
    (tmp_path / "list.csv").write_text(ROWS)
    progress: list[tuple[int, int]] = []
    seen: list[str] = []
    with Client(server.url, api_key(rt)) as pr:
        from_path = pr.upload_template(tmp_path / "welcome.html", subject="Hi {{ first_name }}")
        template = pr.upload_template(HTML, subject="Hi", name="inline")
        upload = pr.upload_file(
            tmp_path / "list.csv", on_progress=lambda s, t: progress.append((s, t))
        )
        campaign = pr.create_campaign(
            template.id, upload.id, name="Wave", from_email="team@example.com"
        )
        done = pr.wait(campaign.id, on_progress=lambda c: seen.append(c.status), poll_interval=0.05)
        messages = list(pr.iter_messages(campaign.id))
        listed = [c.id for c in pr.iter_campaigns()]
        report = b"".join(pr.errors_csv(campaign.id))
        pr.add_suppression("p1@example.com")
        suppressed = [s.email for s in pr.iter_suppressions()]
        pr.remove_suppression("p1@example.com")
        assert list(pr.iter_suppressions()) == []
    assert from_path.name == "welcome" and from_path.variables == ["first_name"]
    assert template.status == "ready" and template.name == "inline"
    assert progress and progress[-1] == (len(ROWS), len(ROWS)) and upload.size == len(ROWS)
    assert done.status == "completed" and done.counts.sent == 40 == done.counts.total
    assert seen[-1] == "completed"
    assert sorted(m.email for m in messages) == sorted(f"p{i}@example.com" for i in range(40))
    assert {m.status for m in messages} == {"sent"}
    assert listed == [campaign.id]
    assert report.splitlines()[0].startswith(b"row")
    assert suppressed == ["p1@example.com"]


class DropFirstCampaignAnswer(httpx.BaseTransport):
    """Sends every request on the real transport, but loses the answer to the first
    campaign POST: the server made the campaign, the client never heard."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.keys: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path == "/api/v1/campaigns":
            self.keys.append(request.headers["Idempotency-Key"])
            if len(self.keys) == 1:
                response.read()
                raise httpx.ReadError("answer lost", request=request)
        return response


def test_a_retried_create_makes_one_campaign(
    runtime: Runtime, live_server: LiveServer, tmp_path: Path
) -> None:
    (tmp_path / "list.csv").write_text(ROWS)
    transport = DropFirstCampaignAnswer()
    sleeps: list[float] = []
    with Client(live_server.url, api_key(runtime), transport=transport, sleep=sleeps.append) as pr:
        template = pr.upload_template(HTML, subject="Hi")
        upload = pr.upload_file(tmp_path / "list.csv")
        campaign = pr.create_campaign(template.id, upload.id)
        assert [c.id for c in pr.iter_campaigns()] == [campaign.id]
    assert len(transport.keys) == 2 and transport.keys[0] == transport.keys[1]
    assert len(sleeps) >= 1


def test_errors_are_mapped(runtime: Runtime, live_server: LiveServer) -> None:
    with Client(live_server.url, api_key(runtime)) as pr:
        with pytest.raises(NotFound) as missing:
            pr.status("cmp_nope")
        assert missing.value.status == 404 and missing.value.code
        with pytest.raises(TemplateInvalid) as invalid:
            pr.upload_template("<p>{{ unclosed </p>", subject="Hi")
        assert invalid.value.errors and invalid.value.errors[0]["message"]
    with Client(live_server.url, "wrong-key") as pr, pytest.raises(Unauthorized) as denied:
        pr.status("cmp_nope")
    assert denied.value.status == 401 and denied.value.code


def test_retry_after_is_honoured() -> None:
    script = [(503, {"Retry-After": "3"}, b"{}"), (503, {"Retry-After": "1"}, b"{}")]
    ok = (
        200,
        {"Content-Type": "application/json"},
        b'{"transaction_id": "c1", "status": "sending", "new": 1}',
    )
    sleeps: list[float] = []
    with ScriptedHttp([*script, ok]) as http, Client(http.url, "k", sleep=sleeps.append) as pr:
        campaign = pr.status("c1")
    assert campaign.status == "sending"
    assert sleeps == [3.0, 1.0] and len(http.requests) == 3


def test_connection_refused_gives_transport_error_after_the_retries() -> None:
    sleeps: list[float] = []
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, "k", retries=3, sleep=sleeps.append) as pr, pytest.raises(TransportError):
        pr.status("c1")
    assert len(sleeps) == 3


def test_async_client_flow(
    relay_server: tuple[Runtime, LiveServer], smtp_relay: SmtpRelay, tmp_path: Path
) -> None:
    rt, server = relay_server
    (tmp_path / "list.csv").write_text(ROWS)

    async def flow() -> tuple[str, list[str]]:
        async with AsyncClient(server.url, api_key(rt)) as pr:
            template = await pr.upload_template(HTML, subject="Hi")
            upload = await pr.upload_file(tmp_path / "list.csv")
            campaign = await pr.create_campaign(template.id, upload.id)
            done = await pr.wait(campaign.id, poll_interval=0.05)
            emails = [m.email async for m in pr.iter_messages(campaign.id)]
            return done.status, emails

    status, emails = asyncio.run(flow())
    assert status == "completed" and len(emails) == 40
