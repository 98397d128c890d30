"""Finding a campaign's messages by address: a prefix, case-insensitive, with LIKE's own
wildcards taken literally."""

from __future__ import annotations

from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient


def test_messages_are_found_by_address_prefix(client: ApiClient) -> None:
    template_id = client.upload_template("<p>Hi</p>", "Hi")
    rows = [["email"], ["ann@example.com"], ["anna@example.org"], ["bob@example.com"]]
    rows.append(["a_z@example.com"])
    file_id = client.upload_file(csv_bytes(rows))
    response = client.create_campaign(template_id=template_id, file_id=file_id, hold=True)
    campaign_id = response.json()["transaction_id"]
    client.wait(campaign_id, until=("held",))

    def found(email: str) -> list[str]:
        return [m["email"] for m in client.messages(campaign_id, email=email, limit=1)]

    assert found("ANN") == ["ann@example.com", "anna@example.org"]  # paged one by one
    assert found("ann@example.com") == ["ann@example.com"]
    assert found("a_") == ["a_z@example.com"]  # "_" is not a wildcard
    assert found("zed") == []
    too_long = client.http.get(f"/api/v1/campaigns/{campaign_id}/messages?email={'a' * 321}")
    assert too_long.status_code == 422
    client.http.post(f"/api/v1/campaigns/{campaign_id}/cancel")
