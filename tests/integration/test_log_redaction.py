"""No secret in what ``postroom serve`` prints: the banner, uvicorn's access lines (query
strings included) and log records, in both log formats, through real requests."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from postroom.events.unsubscribe import unsubscribe_token
from tests.integration.test_cli import POSTROOM, cli_env, postroom, wait_for_health
from tests.support.live_server import free_port

SMTP_PASSWORD = "relay-pw-8c1f"
DATABASE_PASSWORD = "db-pw-51ae"
SECRET_KEY = "log-test-secret-key"


def _with_password(database_url: str) -> str:
    """PostgreSQL here trusts 127.0.0.1, so a password in the URL is accepted and unused."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return database_url
    return url.set(password=DATABASE_PASSWORD).render_as_string(hide_password=False)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_serve_prints_no_secret(tmp_path: Path, database_url: str, log_format: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = cli_env(
        tmp_path,
        _with_password(database_url),
        POSTROOM_BASE_URL=base,
        POSTROOM_SECRET_KEY=SECRET_KEY,
        POSTROOM_LOG_FORMAT=log_format,
        # Never contacted: nothing is sent in this test.
        POSTROOM_TRANSPORT_URL=f"smtp://relay-user:{SMTP_PASSWORD}@127.0.0.1:1?tls=none",
    )
    key = postroom("tenant", "create", "acme", "--json", env=env, cwd=tmp_path).stdout
    api_key = key.split('"api_key": "')[1].split('"')[0]
    process = subprocess.Popen(
        [POSTROOM, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # pr_<hex id>_<secret>: the secret may hold "_" itself.
    secrets = [SMTP_PASSWORD, DATABASE_PASSWORD, api_key.split("_", 2)[2]]
    try:
        wait_for_health(base)
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {api_key}"})
        # A key put in the query string by mistake (refused: keys go in headers).
        assert api.get("/api/v1/campaigns", params={"api_key": api_key}).status_code == 200
        # A presigned upload: its URL carries a signature that lets anyone upload.
        ticket = api.post("/api/v1/files/presigned-url", json={"filename": "a.csv"}).json()
        upload_url = ticket["upload_url"]
        signature = httpx.URL(upload_url).params["sig"]
        secrets.append(signature)
        put = httpx.put(
            upload_url, content=b"email\r\na@example.com\r\n", headers=ticket["headers"]
        )
        assert put.status_code == 201
        # A webhook secret is shown once, in the response, and nowhere else.
        hook = api.post(
            "/api/v1/webhooks",
            json={"url": "https://hooks.example.com/in", "events": ["delivered"]},
        )
        assert hook.status_code == 201, hook.text
        secrets.append(hook.json()["secret"].removeprefix("whsec_"))
        # An unsubscribe link: whoever has it can unsubscribe the recipient.
        token = unsubscribe_token(SECRET_KEY.encode(), 12345)
        secrets.append(token.split(".", 1)[1])
        assert httpx.get(f"{base}/u/{token}").status_code == 200
        # The console's sign-in form takes the key in its body.
        assert httpx.post(f"{base}/signin", data={"api_key": api_key}).status_code == 303
        api.close()
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    output = stdout + stderr
    leaked = [secret for secret in secrets if secret in output]
    assert leaked == [], output
    # The lines are there, with the secrets masked (uvicorn's text access lines go to stdout).
    assert "smtp://relay-user:***@127.0.0.1:1" in stdout  # the banner
    assert "/api/v1/campaigns?api_key=*** HTTP/1.1" in output
    assert "&sig=*** HTTP/1.1" in output
    assert "/u/12345.*** HTTP/1.1" in output
