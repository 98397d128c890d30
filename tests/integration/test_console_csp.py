"""The console under its Content-Security-Policy in a real browser (Debian's chromium): htmx,
the confirm dialog and the time zone choice still work, nothing the console itself does is
blocked, an injected inline script is, and no other site can frame the console."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from postroom.runtime import Runtime
from tests.integration.test_campaign_flow import csv_bytes
from tests.integration.test_console import CHROMIUM, sign_in
from tests.integration.test_console import browser as browser  # the fixture, shared
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (make setup installs it)"
)

#: Records every CSP violation the page reports, from before its first script runs.
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.effectiveDirective + " " + e.blockedURI);
});
"""


@pytest.fixture
def paris_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, timezone_id="Europe/Paris"
    )
    context.set_default_timeout(10_000)
    context.add_init_script(WATCH_VIOLATIONS)
    try:
        yield context.new_page()
    finally:
        context.close()


def violations(page: Page) -> list[str]:
    found: list[str] = page.evaluate("window.__violations")
    return found


def test_the_console_works_under_its_policy(
    paris_page: Page, runtime: Runtime, live_server: LiveServer, client: ApiClient
) -> None:
    page = paris_page
    template_id = client.upload_template(
        '<p style="color: rgb(200, 0, 0)">Hello {{ name }}</p>', "Hi {{ name }}"
    )
    file_id = client.upload_file(csv_bytes([["email", "name"], ["ann@example.com", "Ann"]]))
    campaign_id = client.create_campaign(
        name="Under CSP", template_id=template_id, file_id=file_id, hold=True
    ).json()["transaction_id"]
    key = client.http.headers["Authorization"].removeprefix("Bearer ")
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

    sign_in(page, live_server.url, key)
    page.goto(f"{live_server.url}/campaigns/{campaign_id}")
    # htmx polls the processing campaign until it is held, then loads the preview.
    expect(page.locator("#campaign-status")).to_have_text("held", timeout=15_000)
    expect(page.locator("#preview-subject")).to_have_text("Hi Ann")
    preview = page.frame_locator("iframe.preview").locator("p")
    expect(preview).to_have_text("Hello Ann")
    # The mail's inline style applies inside the sandboxed preview, which inherits the policy.
    expect(preview).to_have_css("color", "rgb(200, 0, 0)")
    # console.js chose the browser's time zone in the form htmx swapped in.
    expect(page.locator("select#zone")).to_have_value("Europe/Paris")

    # The confirm dialog (console.js, not an inline onsubmit): dismissed, nothing happens.
    asked: list[str] = []

    def answer(accept: bool) -> None:
        page.once(
            "dialog",
            lambda d: (asked.append(d.message), d.accept() if accept else d.dismiss()),
        )

    answer(accept=False)
    page.get_by_role("button", name="Discard").click()
    expect(page.locator("#campaign-status")).to_have_text("held")
    assert client.status(campaign_id)["status"] == "held"
    answer(accept=True)
    page.get_by_role("button", name="Discard").click()
    expect(page.locator("#campaign-status")).to_have_text("cancelled")
    assert asked == ["Cancel this campaign? Messages not yet sent will not be sent."] * 2

    assert violations(page) == []
    assert [e for e in console_errors if "Content Security Policy" in e] == []

    # What the policy is for: a script injected into the page does not run.
    page.evaluate(
        """() => {
          const s = document.createElement("script");
          s.textContent = "window.__injected = true";
          document.body.appendChild(s);
        }"""
    )
    assert page.evaluate("window.__injected === undefined")
    assert any(v.startswith("script-src") for v in violations(page))


def test_no_other_site_can_frame_the_console(paris_page: Page, live_server: LiveServer) -> None:
    page = paris_page
    page.set_content(f'<iframe id="console" src="{live_server.url}/signin"></iframe>')
    page.wait_for_timeout(1000)
    framed = [f for f in page.frames if f != page.main_frame]
    assert len(framed) == 1
    # The browser refuses to render it: the frame shows its error page, not the sign-in form.
    assert framed[0].locator("#api_key, input[name=api_key]").count() == 0
