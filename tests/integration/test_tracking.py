"""Open pixel and click redirect through the live server: signed targets only, every hit an
event, unique figures counted once, scanner hits stored flagged and not counted; the
switches per campaign and per tenant."""

from __future__ import annotations

import re

from postroom.events.tracking import click_token, open_token
from postroom.runtime import Runtime
from postroom.tenants.service import authenticate, set_tracking_defaults
from tests.integration.test_campaign_flow import csv_bytes
from tests.integration.test_unsubscribe import sent_messages
from tests.support.api_client import ApiClient

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0"}


def test_pixel_and_click_record_events_and_count_once(runtime: Runtime, client: ApiClient) -> None:
    template_id = client.upload_template("<p>Hi</p>", "Hi")
    file_id = client.upload_file(csv_bytes([["email"], ["ann@example.com"]]))
    campaign_id = client.create_campaign(template_id=template_id, file_id=file_id).json()[
        "transaction_id"
    ]
    client.wait(campaign_id)
    (url,) = re.findall(
        r"<(https?://[^>]+)>", str(sent_messages(runtime)["ann@example.com"]["List-Unsubscribe"])
    )
    pk = int(url.rsplit("/", 1)[1].split(".")[0])
    key = runtime.secret_key
    target = "https://shop.example/item?a=1&b=2"

    pixel = client.http.get(f"/t/o/{open_token(key, pk)}.gif", headers=BROWSER)
    assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
    assert len(pixel.content) == 43 and "no-store" in pixel.headers["cache-control"]
    click_path = f"/t/c/{click_token(key, pk, target)}"
    for _ in range(2):
        hit = client.http.get(click_path, headers=BROWSER, follow_redirects=False)
        assert hit.status_code == 302 and hit.headers["location"] == target
    scan = client.http.get(
        click_path, headers={"User-Agent": "python-requests/2.31"}, follow_redirects=False
    )
    assert scan.status_code == 302

    counts = client.status(campaign_id)["counts"]
    assert counts["opened"] == 1 and counts["clicked"] == 1
    links = client.http.get(f"/api/v1/campaigns/{campaign_id}/analytics").json()["top_links"]
    assert links == [{"url": target, "clicks": 2, "unique_clicks": 1}]  # the scan not counted
    detail = client.http.get(f"/api/v1/campaigns/{campaign_id}/messages/{pk}").json()
    kinds = [e["type"] for e in detail["timeline"] if e["kind"] == "event"]
    assert kinds.count("opened") == 1 and kinds.count("clicked") == 3
    clicks = client.http.get(
        f"/api/v1/campaigns/{campaign_id}/events", params={"type": "clicked"}
    ).json()["events"]
    assert len(clicks) == 3
    assert sorted(e["data"]["suspected_bot"] for e in clicks) == [False, False, True]
    assert all(e["data"]["url"] == target and e["data"]["ip"] == "127.0.0.1" for e in clicks)

    token = click_token(key, pk, target)
    for i in range(len(token)):
        other = "A" if token[i] != "A" else "B"
        bad = token[:i] + other + token[i + 1 :]
        assert client.http.get(f"/t/c/{bad}", follow_redirects=False).status_code == 404
    assert client.http.get(f"/t/o/{open_token(b'x' * 32, pk)}.gif").status_code == 404
    after = client.http.get(
        f"/api/v1/campaigns/{campaign_id}/events", params={"type": "clicked"}
    ).json()["events"]
    assert len(after) == 3


def test_sent_html_has_tracked_links_and_the_pixel(runtime: Runtime, client: ApiClient) -> None:
    template_id = client.upload_template(
        '<html><body><a href="https://shop.example/x?a=1&amp;b=2">Shop</a>'
        '<a href="mailto:help@example.com">Mail</a>'
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a></body></html>',
        "Hi",
    )
    file_id = client.upload_file(csv_bytes([["email"], ["ann@example.com"]]))
    campaign_id = client.create_campaign(template_id=template_id, file_id=file_id).json()[
        "transaction_id"
    ]
    client.wait(campaign_id)
    part = sent_messages(runtime)["ann@example.com"].get_body(("html",))
    assert part is not None
    body = part.get_content()
    base = runtime.settings.base_url
    assert "https://shop.example" not in body and 'href="mailto:help@example.com"' in body
    assert f'href="{base}/u/' in body
    (pixel,) = re.findall(rf'<img src="{re.escape(base)}(/t/o/[^"]+)"', body)
    assert body.index(pixel) < body.index("</body>")
    (click,) = re.findall(rf'href="{re.escape(base)}(/t/c/[^"]+)"', body)
    hit = client.http.get(click, headers=BROWSER, follow_redirects=False)
    assert hit.status_code == 302 and hit.headers["location"] == "https://shop.example/x?a=1&b=2"
    assert client.http.get(pixel, headers=BROWSER).status_code == 200
    counts = client.status(campaign_id)["counts"]
    assert counts["opened"] == 1 and counts["clicked"] == 1


def _html_sent_to(runtime: Runtime, client: ApiClient, email: str, **switches: bool) -> str:
    template_id = client.upload_template(
        '<html><body><a href="https://example.com/a">A</a></body></html>', "Hi"
    )
    file_id = client.upload_file(csv_bytes([["email"], [email]]))
    created = client.create_campaign(template_id=template_id, file_id=file_id, **switches)
    assert created.status_code == 202, created.text
    campaign_id = created.json()["transaction_id"]
    status = client.wait(campaign_id)
    assert (status["track_opens"], status["track_clicks"]) == (
        switches.get("track_opens", status["track_opens"]),
        switches.get("track_clicks", status["track_clicks"]),
    )
    part = sent_messages(runtime)[email].get_body(("html",))
    assert part is not None
    return str(part.get_content())


def test_tracking_switches_per_campaign_and_per_tenant(runtime: Runtime, client: ApiClient) -> None:
    untracked = _html_sent_to(runtime, client, "a@example.com", track_clicks=False)
    assert 'href="https://example.com/a"' in untracked and "/t/o/" in untracked
    no_pixel = _html_sent_to(runtime, client, "b@example.com", track_opens=False)
    assert "/t/c/" in no_pixel and "/t/o/" not in no_pixel

    with runtime.db.write() as conn:  # as `postroom tenant tracking T --no-opens --no-clicks`
        caller = authenticate(conn, client.http.headers["Authorization"].removeprefix("Bearer "))
        set_tracking_defaults(conn, caller.tenant_id, opens=False, clicks=False)
    by_default = _html_sent_to(runtime, client, "c@example.com")
    assert 'href="https://example.com/a"' in by_default and "/t/o/" not in by_default
    overridden = _html_sent_to(runtime, client, "d@example.com", track_clicks=True)
    assert "/t/c/" in overridden and "/t/o/" not in overridden
