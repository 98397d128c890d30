"""One tenant never reaches another's data: every API route that names a resource answers
404 to another tenant's key (the route list comes from /openapi.json, so a new route must be
added here), every list leaves the other tenant's rows out, and nothing of the owner's
changes."""

from __future__ import annotations

from typing import Any

from postroom.runtime import Runtime
from tests.integration.conftest import new_client
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer

#: Bodies for the routes that take one: valid, so that only ownership can refuse them.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/api/v1/campaigns/{campaign_id}"): {"send_at": None},
    ("POST", "/api/v1/campaigns/{campaign_id}/confirm"): {},
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): {"enabled": False},
}
#: Routes with a path parameter that is not a tenant's resource. Erasing an address acts on
#: the caller's own data whatever it names (200 with zeros); the owner's list, compared
#: below, shows that the owner's entry for the same address stayed.
NOT_TENANT_RESOURCES = {"/uploads/{key}", "/api/v1/recipients/{email}"}


def owned_resources(owner: ApiClient) -> dict[str, str]:
    template_id = owner.upload_template("<p>Hi {{ email }}</p>", "Hi")
    file_id = owner.upload_file(csv_bytes([["email"], ["a@example.com"], ["b@example.com"]]))
    created = owner.create_campaign(template_id=template_id, file_id=file_id, hold=True)
    assert created.status_code == 202, created.text
    campaign_id = created.json()["transaction_id"]
    owner.wait(campaign_id, until=("held",))
    message_id = owner.messages(campaign_id)[0]["id"]
    assert owner.http.post("/api/v1/suppressions", json={"email": "s@example.com"}).is_success
    webhook = owner.http.post(
        "/api/v1/webhooks", json={"url": "https://example.com/h", "events": ["*"]}
    )
    assert webhook.status_code == 201, webhook.text
    return {
        "template_id": template_id,
        "file_id": file_id,
        "campaign_id": campaign_id,
        "message_id": str(message_id),
        "email": "s@example.com",
        "webhook_id": webhook.json()["id"],
    }


def test_another_tenant_gets_404_on_every_resource_route(
    client: ApiClient, runtime: Runtime, live_server: LiveServer
) -> None:
    ids = owned_resources(client)
    before = {
        "status": client.status(ids["campaign_id"]),
        "webhook": client.http.get(f"/api/v1/webhooks/{ids['webhook_id']}").json(),
        "suppressions": client.http.get("/api/v1/suppressions").json(),
    }
    intruder = new_client(runtime, live_server, "intruder")
    try:
        spec = intruder.http.get("/openapi.json").json()
        tried = 0
        for path, operations in spec["paths"].items():
            if "{" not in path or path in NOT_TENANT_RESOURCES:
                continue
            for method in operations:
                url = path.format(**ids)
                body = BODIES.get((method.upper(), path))
                answer = intruder.http.request(method.upper(), url, json=body)
                assert answer.status_code == 404, (method, path, answer.text)
                assert answer.json()["error"]["code"].endswith("not_found"), answer.text
                tried += 1
        assert tried >= 18

        # Lists show the intruder only its own (nothing).
        assert intruder.http.get("/api/v1/campaigns").json()["campaigns"] == []
        assert intruder.http.get("/api/v1/suppressions").json()["suppressions"] == []
        assert intruder.http.get("/api/v1/webhooks").json()["webhooks"] == []
        funnel = intruder.http.get("/api/v1/analytics").json()["funnel"]
        assert funnel["sent"]["count"] == 0
        # The owner's template and file cannot be used for the intruder's campaign.
        stolen = intruder.create_campaign(template_id=ids["template_id"], file_id=ids["file_id"])
        assert stolen.status_code == 404, stolen.text
        own_template = intruder.upload_template("<p>x</p>", "x")
        stolen_file = intruder.create_campaign(template_id=own_template, file_id=ids["file_id"])
        assert stolen_file.status_code == 404, stolen_file.text
        # Erasing the owner's addresses erases them from the intruder's data alone.
        for email in ("s@example.com", "a@example.com"):
            erased = intruder.http.delete(f"/api/v1/recipients/{email}")
            assert erased.status_code == 200 and erased.json()["counts"]["messages"] == 0
    finally:
        intruder.close()

    # Nothing of the owner's moved.
    assert client.status(ids["campaign_id"])["status"] == before["status"]["status"] == "held"
    assert client.http.get(f"/api/v1/webhooks/{ids['webhook_id']}").json() == before["webhook"]
    assert client.http.get("/api/v1/suppressions").json() == before["suppressions"]
    assert "a@example.com" in {m["email"] for m in client.messages(ids["campaign_id"])}
