"""Webhooks go to public addresses only unless the operator allows private ones: refused
when registered (address literals, local names) and again at each delivery (the host is
resolved and every address checked, and the request goes to the checked address)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from postroom.runtime import build_runtime
from postroom.webhooks.destinations import (
    PrivateDestination,
    is_public,
    pin,
    pinned_request,
    registration_problem,
)
from tests.conftest import make_settings
from tests.integration.conftest import ServerFactory
from tests.integration.test_webhooks import announce, deliver, delivery_rows, endpoint
from tests.support.webhook_receiver import WebhookReceiver

NOT_PUBLIC = [
    "127.0.0.1",
    "127.1.2.3",
    "10.0.0.8",
    "172.16.4.4",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "224.0.0.1",
    "::1",
    "fe80::1",
    "fd00::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:169.254.169.254",
]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    host = f"[{address}]" if ":" in address else address
    assert registration_problem(host) is not None


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST.", "db.internal", "api.localhost", "x.local", "hooks"]
)
def test_local_names_are_refused(host: str) -> None:
    assert registration_problem(host) is not None


@pytest.mark.parametrize("host", ["hooks.example.com", "93.184.216.34", "[2606:4700::1111]"])
def test_public_hosts_are_accepted(host: str) -> None:
    assert registration_problem(host) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8080/",
        "https://metadata.google.internal/",
        "http://[::ffff:10.0.0.1]/",
    ],
)
def test_the_api_refuses_private_webhook_urls(server_factory: ServerFactory, url: str) -> None:
    _rt, api = server_factory.start(webhook_allow_private_addresses=False)
    response = api.http.post("/api/v1/webhooks", json={"url": url, "events": ["sent"]})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "private_webhook_address"
    assert api.http.get("/api/v1/webhooks").json()["webhooks"] == []
    public = api.http.post(
        "/api/v1/webhooks", json={"url": "https://hooks.example.com/p", "events": ["sent"]}
    )
    assert public.status_code == 201
    moved = api.http.patch(f"/api/v1/webhooks/{public.json()['id']}", json={"url": url})
    assert moved.status_code == 422
    assert moved.json()["error"]["code"] == "private_webhook_address"


def test_a_private_endpoint_registered_earlier_gets_nothing_once_refused(
    database_url: str, tmp_path: Path, server_port: int
) -> None:
    """An endpoint allowed when it was made (or whose name now resolves to a private
    address) is refused at delivery: nothing reaches it and the attempt records why."""
    with WebhookReceiver() as receiver:
        allowed = make_settings(database_url, tmp_path, server_port)
        rt = build_runtime(allowed, var_dir=tmp_path / "var")
        try:
            tenant_id, _hook = endpoint(rt, receiver.url, ["campaign.completed"])
            announce(rt, tenant_id, 1)
        finally:
            rt.close()
        strict = make_settings(
            database_url, tmp_path, server_port, webhook_allow_private_addresses=False
        )
        rt = build_runtime(strict, var_dir=tmp_path / "var")
        try:
            assert deliver(rt) == 1
            row = delivery_rows(rt)[0]
        finally:
            rt.close()
        assert receiver.received == []
    assert row.status == "pending" and row.attempts == 1
    assert row.last_error.startswith("refused:") and "127.0.0.1" in row.last_error


def resolving_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> None:
    """A resolver answering with ``addresses``, for the names in these tests (no DNS here)."""

    async def getaddrinfo(
        self: asyncio.AbstractEventLoop, host: str, port: int, **_: Any
    ) -> list[Any]:
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo)


def test_a_name_resolving_to_any_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolving_to(monkeypatch, "93.184.216.34", "10.1.2.3")
    with pytest.raises(PrivateDestination, match=r"10\.1\.2\.3"):
        asyncio.run(pinned_request("https://hooks.example.com/p"))


def test_a_public_name_is_sent_to_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolving_to(monkeypatch, "93.184.216.34")
    pinned = asyncio.run(pinned_request("https://hooks.example.com:8443/p?q=1"))
    assert pinned.url == "https://93.184.216.34:8443/p?q=1"
    assert pinned.headers == {"Host": "hooks.example.com:8443"}
    assert pinned.extensions == {"sni_hostname": "hooks.example.com"}
    resolving_to(monkeypatch, "2606:4700::1111")
    pinned = asyncio.run(pinned_request("http://hooks.example.com/p"))
    assert pinned.url == "http://[2606:4700::1111]/p" and pinned.extensions == {}


def test_a_pinned_request_reaches_the_address_with_the_name_as_host() -> None:
    with WebhookReceiver() as receiver:
        port = httpx.URL(receiver.url).port
        named = f"http://hooks.example.com:{port}/in"
        pinned = pin(named, ipaddress.ip_address("127.0.0.1"))
        response = httpx.post(pinned.url, content=b"{}", headers=pinned.headers)
        assert response.status_code == 200
        assert receiver.received[0].headers["Host"] == f"hooks.example.com:{port}"
