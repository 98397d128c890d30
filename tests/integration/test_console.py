"""The web console in a real browser (Debian's chromium driven by Playwright), against the
live app, its worker and a real SMTP relay. Each page leaves a screenshot in
docs/screenshots/ for the README."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from postroom.client import verify_webhook
from postroom.runtime import Runtime
from postroom.tenants.keys import parse_key
from postroom.tenants.service import create_tenant, revoke_key
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer
from tests.support.smtp_relay import SmtpRelay
from tests.support.webhook_receiver import WebhookReceiver

# The README's screenshots are retaken with POSTROOM_SAVE_SCREENSHOTS=1; otherwise they are
# taken all the same, into a temporary directory, so that a test run leaves the tree clean.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("POSTROOM_SAVE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "postroom-screenshots"
)
CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (make setup installs it)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope, not session: Playwright's sync API keeps an event loop running on the main
    # thread while it is started, and every later test that calls asyncio.run would fail.
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def tenant_key(rt: Runtime) -> str:
    with rt.db.write() as conn:
        return create_tenant(conn, "acme", rt.clock.now())[1]


def sign_in(page: Page, base_url: str, key: str) -> None:
    page.goto(f"{base_url}/signin")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Campaigns", exact=True)).to_be_visible()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_sign_in_with_the_keyboard_then_watch_a_campaign_complete(
    page: Page, relay_server: tuple[Runtime, LiveServer], smtp_relay: SmtpRelay
) -> None:
    rt, server = relay_server
    key = tenant_key(rt)

    page.goto(f"{server.url}/campaigns")  # not signed in: sent to the sign-in page
    expect(page).to_have_url(f"{server.url}/signin")
    page.keyboard.type("pr_nope_wrong")  # the key field has the focus
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_have_text("The API key is not valid.")
    shot(page, "signin")
    page.get_by_label("API key").fill("")
    page.get_by_label("API key").focus()
    page.keyboard.type(key)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign in")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="No campaigns yet")).to_be_visible()
    shot(page, "campaigns-empty")

    page.get_by_role("link", name="New campaign").first.click()
    page.get_by_label("Name").fill("Spring news")
    page.get_by_label("Subject").fill("Hi {{ name }}")
    page.get_by_label("Template (HTML file)").set_input_files(
        {"name": "t.html", "mimeType": "text/html", "buffer": b"<p>Hello {{ name }}</p>"}
    )
    rows = [
        ["email", "name"],
        ["ann@example.com", "Ann"],
        ["not-an-address", "Nobody"],
        ["ANN@example.com", "Ann again"],
        ["bob@example.com", "Bob"],
    ]
    page.get_by_label("Recipients (CSV file with an email column)").set_input_files(
        {"name": "list.csv", "mimeType": "text/csv", "buffer": csv_bytes(rows)}
    )
    shot(page, "new-campaign")
    page.get_by_role("button", name="Upload and review").click()
    expect(page.get_by_role("heading", name="Spring news")).to_be_visible()
    # The page polls until the file is processed, then shows the exact report.
    expect(page.locator("#file-report")).to_have_text(
        "4 rows: 2 valid, 1 invalid, 1 duplicates.", timeout=15_000
    )
    expect(page.locator("#campaign-status")).to_have_text("held")
    # The preview is the first valid row rendered by the sender's code, in a sandboxed frame.
    expect(page.locator("#preview-subject")).to_have_text("Hi Ann")
    expect(page.frame_locator("iframe.preview").locator("p")).to_have_text("Hello Ann")
    assert page.locator("iframe.preview").get_attribute("sandbox") == ""
    # The rows left out, with their reasons, before anything is sent.
    expect(page.locator("#row-issues tbody tr")).to_have_count(2)
    expect(page.locator("#row-issues tbody tr").first).to_contain_text("not-an-address")
    expect(page.locator("#row-issues tbody tr").nth(1)).to_contain_text("duplicate")
    assert smtp_relay.received == []
    # Tall enough that the preview frame is painted (Chromium leaves out-of-process frames
    # below the viewport blank in a full-page capture).
    page.set_viewport_size({"width": 1280, "height": 2400})
    shot(page, "review")
    page.set_viewport_size({"width": 1280, "height": 800})
    url = page.url
    page.get_by_role("button", name="Confirm").click()
    # The counts change without a reload: htmx polls the live fragment.
    expect(page.locator("#campaign-status")).to_have_text("completed", timeout=15_000)
    expect(page.locator("#count-sent")).to_have_text("2")
    expect(page.locator("#messages td .badge")).to_have_text(["sent", "sent"])
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)  # nothing left to pause
    assert page.url == url  # a redirect back to the same page; the rest came by polling
    assert sorted(r.message.get_all("To")[0] for r in smtp_relay.received) == [
        "ann@example.com",
        "bob@example.com",
    ]
    # Results: the funnel and the running totals over time.
    expect(page.locator("#funnel-sent")).to_have_text("2")
    expect(page.locator("#results-chart")).to_be_visible()
    expect(page.locator("#results-chart desc")).to_contain_text("sent 2")
    shot(page, "campaign")
    page.get_by_label("Address starts with").fill("BOB")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#messages tbody tr")).to_have_count(1)
    expect(page.locator("#messages tbody td").nth(1)).to_have_text("bob@example.com")
    page.goto(f"{server.url}/campaigns")
    expect(page.locator("td .badge")).to_have_text("completed")
    shot(page, "campaigns")
    page.set_viewport_size({"width": 390, "height": 800})
    shot(page, "campaigns-390")


def test_pause_and_cancel_a_scheduled_campaign(
    page: Page, runtime: Runtime, live_server: LiveServer, client: ApiClient
) -> None:
    template_id = client.upload_template("<p>Hi</p>", "Hi")
    file_id = client.upload_file(csv_bytes([["email"], ["a@example.com"]]))
    send_at = (runtime.clock.now() + timedelta(hours=1)).isoformat()
    created = client.create_campaign(
        name="Later", template_id=template_id, file_id=file_id, send_at=send_at
    )
    campaign_id = created.json()["transaction_id"]
    client.wait(campaign_id, until=("scheduled",))
    key = client.http.headers["Authorization"].removeprefix("Bearer ")

    sign_in(page, live_server.url, key)
    page.goto(f"{live_server.url}/campaigns/{campaign_id}")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#campaign-status")).to_have_text("paused")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel campaign").click()
    expect(page.locator("#campaign-status")).to_have_text("cancelled")
    assert client.status(campaign_id)["status"] == "cancelled"


def test_suppressions_csrf_and_revoked_keys(
    page: Page, runtime: Runtime, live_server: LiveServer
) -> None:
    key = tenant_key(runtime)
    sign_in(page, live_server.url, key)
    page.get_by_role("link", name="Suppressions").click()
    expect(page.get_by_text("The list is empty.")).to_be_visible()
    page.get_by_label("Email address").fill("Gone@Example.com")
    page.get_by_label("Note (optional)").fill("asked by phone")
    page.get_by_role("button", name="Add to the list").click()
    expect(page.get_by_role("cell", name="Gone@example.com", exact=True)).to_be_visible()
    shot(page, "suppressions")
    page.get_by_role("button", name="Remove Gone@example.com").click()
    expect(page.get_by_text("The list is empty.")).to_be_visible()

    # A POST without the session's token is refused, and changes nothing.
    refused = page.request.post(
        f"{live_server.url}/suppressions", form={"email": "x@example.com"}, max_redirects=0
    )
    assert refused.status == 403
    assert "did not come from this console" in refused.text()
    forged = page.request.post(
        f"{live_server.url}/suppressions",
        form={"email": "x@example.com", "csrf": "forged"},
        max_redirects=0,
    )
    assert forged.status == 403
    page.reload()
    expect(page.get_by_text("The list is empty.")).to_be_visible()

    parsed = parse_key(key)
    assert parsed is not None
    with runtime.db.write() as conn:
        revoke_key(conn, parsed[0], runtime.clock.now())
    page.reload()
    expect(page).to_have_url(f"{live_server.url}/signin")
    cookies = page.context.cookies()
    assert not [c for c in cookies if c["name"] == "postroom_session"]


def test_the_outbox_shows_a_captured_message_rendered_and_raw(
    page: Page, live_server: LiveServer, client: ApiClient
) -> None:
    template_id = client.upload_template("<p>Hello <b>{{ name }}</b></p>", "Welcome {{ name }}")
    file_id = client.upload_file(csv_bytes([["email", "name"], ["cy@example.com", "Cy"]]))
    campaign_id = client.create_campaign(template_id=template_id, file_id=file_id).json()[
        "transaction_id"
    ]
    assert client.wait(campaign_id)["counts"]["sent"] == 1
    key = client.http.headers["Authorization"].removeprefix("Bearer ")

    sign_in(page, live_server.url, key)
    page.get_by_role("link", name="Outbox").click()
    page.get_by_role("link", name="Welcome Cy").click()
    expect(page.get_by_role("heading", name="Welcome Cy")).to_be_visible()
    frame = page.frame_locator("iframe.preview")
    expect(frame.locator("b")).to_have_text("Cy")
    assert page.locator("iframe.preview").get_attribute("sandbox") == ""
    expect(page.locator("pre.raw")).to_contain_text("To: cy@example.com")
    expect(page.locator("pre.raw")).to_contain_text("Subject: Welcome Cy")
    shot(page, "outbox")


def test_a_campaign_from_a_template_used_before(
    page: Page, live_server: LiveServer, client: ApiClient
) -> None:
    client.upload_template("<p>Welcome back {{ name }}</p>", "Back, {{ name }}?", name="winback")
    key = client.http.headers["Authorization"].removeprefix("Bearer ")
    sign_in(page, live_server.url, key)
    page.goto(f"{live_server.url}/campaigns/new")
    recipients = page.get_by_label("Recipients (CSV file with an email column)")
    recipients.set_input_files(
        {"name": "l.csv", "mimeType": "text/csv", "buffer": b"email,name\nzed@example.com,Zed\n"}
    )
    # Neither a file nor a pick: a clear error, the form kept.
    page.get_by_label("Name").fill("Win back")
    page.get_by_role("button", name="Upload and review").click()
    expect(page.locator("#new-error")).to_have_text(
        "Upload a template, or pick one you used before."
    )
    expect(page.get_by_label("Name")).to_have_value("Win back")
    page.get_by_label("Or use a template you uploaded before").select_option(
        label="winback: Back, {{ name }}?"
    )
    page.get_by_label("Recipients (CSV file with an email column)").set_input_files(
        {"name": "l.csv", "mimeType": "text/csv", "buffer": b"email,name\nzed@example.com,Zed\n"}
    )
    page.get_by_role("button", name="Upload and review").click()
    expect(page.locator("#preview-subject")).to_have_text("Back, Zed?", timeout=15_000)
    expect(page.frame_locator("iframe.preview").locator("p")).to_have_text("Welcome back Zed")


def test_api_keys_are_made_shown_once_and_revoked(
    page: Page, runtime: Runtime, live_server: LiveServer
) -> None:
    key = tenant_key(runtime)
    sign_in(page, live_server.url, key)
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr").first).to_contain_text("this session")
    page.get_by_role("button", name="Create a key").click()
    new_key = page.get_by_label("New API key").input_value()
    assert new_key.startswith("pr_") and new_key != key
    expect(page.locator("tbody tr")).to_have_count(2)
    shot(page, "keys")
    api = httpx.Client(base_url=live_server.url, headers={"X-API-Key": new_key})
    assert api.get("/api/v1/campaigns").status_code == 200
    parsed = parse_key(new_key)
    assert parsed is not None
    page.goto(f"{live_server.url}/keys")
    expect(page.get_by_label("New API key")).to_have_count(0)  # shown only once
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Revoke pr_{parsed[0]}").click()
    expect(page.locator(f"#key-{parsed[0]}")).to_contain_text("revoked")
    assert api.get("/api/v1/campaigns").status_code == 401
    # Another tenant's key id cannot be revoked from here.
    other = tenant_key(runtime)
    other_id = parse_key(other)
    assert other_id is not None
    csrf = page.locator("input[name=csrf]").first.input_value()
    refused = page.request.post(
        f"{live_server.url}/keys/revoke", form={"key_id": other_id[0], "csrf": csrf}
    )
    assert refused.status == 404
    assert (
        httpx.get(f"{live_server.url}/api/v1/campaigns", headers={"X-API-Key": other}).status_code
        == 200
    )
    # Revoking the session's own key signs out.
    own = parse_key(key)
    assert own is not None
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Revoke pr_{own[0]}").click()
    expect(page).to_have_url(f"{live_server.url}/signin")
    api.close()


def test_webhooks_are_added_and_their_deliveries_shown(
    page: Page, live_server: LiveServer, client: ApiClient
) -> None:
    key = client.http.headers["Authorization"].removeprefix("Bearer ")
    sign_in(page, live_server.url, key)
    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_text("No endpoints yet.")).to_be_visible()
    with WebhookReceiver() as receiver:
        page.get_by_label("URL").fill(receiver.url)
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.locator("#webhook-error")).to_have_text("Choose at least one event.")
        expect(page.get_by_label("URL")).to_have_value(receiver.url)
        page.get_by_label("campaign.completed").check()
        page.get_by_label("Description (optional)").fill("CRM")
        page.get_by_role("button", name="Add endpoint").click()
        secret = page.get_by_label("Signing secret").input_value()
        assert secret.startswith("whsec_")

        template_id = client.upload_template("<p>Hi</p>", "Hi")
        file_id = client.upload_file(csv_bytes([["email"], ["w@example.com"]]))
        campaign_id = client.create_campaign(template_id=template_id, file_id=file_id).json()[
            "transaction_id"
        ]
        client.wait(campaign_id)
        (received,) = receiver.wait_for(1)
        assert verify_webhook(secret, received.body, received.headers["Postroom-Signature"])
        page.goto(f"{live_server.url}/webhooks")
        page.get_by_role("link", name=receiver.url).click()  # its page, now without the secret
        expect(page.get_by_label("Signing secret")).to_have_count(0)
        expect(page.locator("tbody tr")).to_have_count(1)
        expect(page.locator("tbody tr").first).to_contain_text("campaign.completed")
        expect(page.locator("tbody tr").first).to_contain_text("delivered")
        shot(page, "webhook")
        page.get_by_role("button", name="Disable").click()
        expect(page.locator("#webhook-status")).to_have_text("disabled")
        page.get_by_role("button", name="Enable").click()
        expect(page.locator("#webhook-status")).to_have_text("active")
        page.get_by_role("link", name="← Webhooks").click()
        expect(page.get_by_role("link", name=receiver.url)).to_be_visible()
        shot(page, "webhooks")
