"""A stand-in for Amazon SES: moto's HTTP server on 127.0.0.1, and what it was sent.

moto imitates SES; it is not SES. It accepts any identity it was told about as verified,
ignores ConfigurationSetName and has no GetAccount (the quota), which tests/transports/
ses_stub.py answers instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer
from moto.ses.models import ses_backends

from tests.support.live_server import free_port

MOTO_HOST = "127.0.0.1"
MOTO_REGION = "us-east-1"


@dataclass(frozen=True)
class SentRaw:
    """One SendEmail call as moto stored it."""

    message_id: str
    sender: str
    recipient: str
    data: bytes


class MotoSes:
    """moto's server in a thread; its SES state lives in this process, so tests can read it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://{MOTO_HOST}:{self.port}"
        self._server = ThreadedMotoServer(ip_address=MOTO_HOST, port=self.port, verbose=False)

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        """Forget every identity and message (moto's own reset endpoint)."""
        httpx.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()

    def verify_sender(self, address: str) -> None:
        """Make ``address`` a sending identity, as the SES console would after verification."""
        client = boto3.session.Session().client(
            "sesv2",
            region_name=MOTO_REGION,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_email_identity(EmailIdentity=address)
        client.close()

    def sent(self, region: str = MOTO_REGION) -> list[SentRaw]:
        """Every message moto accepted in ``region``, oldest first."""
        # moto adds the addresses of the To/Cc headers after those of the call: the first
        # destination is the one SendEmail was given.
        return [
            SentRaw(
                message_id=message.id,
                sender=message.source,
                recipient=message.destinations[0],
                data=message.raw_data.encode("utf-8"),
            )
            for message in ses_backends[DEFAULT_ACCOUNT_ID][region].sent_messages
        ]


def use_moto_ses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint_url: str) -> None:
    """Point the standard AWS chain at ``endpoint_url`` with test credentials, and nowhere else.

    Profile files and the instance metadata service are switched off, so that nothing on
    this machine (or the network) can change which credentials or endpoint are used.
    """
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL_SESV2",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", MOTO_REGION)
