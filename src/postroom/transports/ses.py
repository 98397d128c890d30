"""SesTransport: delivers through the Amazon SES v2 API, sending each message as raw MIME.

URL: ``ses://REGION[?configuration_set=NAME]``. Credentials and the endpoint come from the
standard AWS chain only (environment, shared profile, IAM role; boto3's own
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_SESV2`` override the endpoint), never from the URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from postroom.transports.base import (
    Accepted,
    Envelope,
    Outcome,
    Transient,
    reject_transport_url,
    send_each,
    to_wire_format,
    transport_url_options,
)
from postroom.transports.ses_errors import classify_error

log = logging.getLogger(__name__)

_QUERY_KEYS = ("configuration_set",)
_REGION = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)+")
_CONFIGURATION_SET = re.compile(r"[A-Za-z0-9_-]{1,64}")
# After a failed quota read, ask again no sooner than this: the rate limiter may call often.
_QUOTA_RETRY_SECONDS = 60.0

_Result = TypeVar("_Result")


class SesTransport:
    """Sends each envelope with one SendEmail call, in a pool of ``pool_size`` threads.

    boto3 is synchronous, so calls run in a thread pool beside the event loop. botocore's
    own retries are switched off: Postroom decides about retries, and a retried call could
    deliver a message twice.
    """

    name = "ses"

    def __init__(
        self,
        region: str,
        *,
        configuration_set: str | None = None,
        pool_size: int = 4,
        timeout_seconds: float = 30.0,
    ) -> None:
        self.region = region
        self.configuration_set = configuration_set
        self.pool_size = pool_size
        self.timeout_seconds = timeout_seconds
        self._threads = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="ses")
        self._client: Any = None
        self._client_lock = asyncio.Lock()
        self._max_send_rate: float | None = None
        self._quota_failed_at: float | None = None
        self._quota_lock = asyncio.Lock()
        self._calls_in_flight = 0
        self._no_calls_in_flight = asyncio.Event()
        self._no_calls_in_flight.set()
        self._is_closing = False

    @classmethod
    def from_url(cls, url: str, *, pool_size: int, timeout_seconds: float) -> SesTransport:
        """Parse ``ses://REGION[?configuration_set=NAME]``; raises ConfigError naming
        POSTROOM_TRANSPORT_URL. Nothing is contacted until the first send."""
        parts = urlsplit(url)
        if parts.scheme.lower() != "ses":
            reject_transport_url("an SES URL starts with ses://")
        if "@" in parts.netloc:
            # Never echoed: whatever is there may be a secret.
            reject_transport_url(
                "credentials do not go in the URL; SES uses the standard AWS chain"
            )
        region = parts.hostname or ""
        if not _REGION.fullmatch(region) or parts.netloc.lower() != region:
            reject_transport_url("an SES URL names its region: ses://REGION, e.g. ses://eu-west-1")
        if parts.path not in ("", "/") or parts.fragment:
            reject_transport_url(
                "an SES URL has no path or fragment; options go in ?configuration_set=NAME"
            )
        query = transport_url_options(parts.query, _QUERY_KEYS, "SES")
        configuration_set = query.get("configuration_set")
        if configuration_set is not None and not _CONFIGURATION_SET.fullmatch(configuration_set):
            reject_transport_url("configuration_set is 1 to 64 letters, digits, '_' or '-'")
        return cls(
            region,
            configuration_set=configuration_set,
            pool_size=pool_size,
            timeout_seconds=timeout_seconds,
        )

    async def send(self, envelope: Envelope) -> Outcome:
        """One SendEmail call; every delivery problem comes back as a Transient or Permanent."""
        if self._is_closing:
            return Transient("transport_closed", transport_level=True)
        async with self._in_flight():
            return await self._send_once(envelope)

    async def send_many(self, envelopes: Sequence[Envelope]) -> list[Outcome]:
        """Send concurrently, at most ``pool_size`` calls at a time; outcomes in input order."""
        return await send_each(self.send, envelopes)

    async def max_send_rate(self) -> float | None:
        """The account's SES sending quota in messages per second, read once and kept.

        None (with a warning in the log) when it cannot be read; it is asked for again a
        minute later at the earliest.
        """
        if self._max_send_rate is not None or self._is_closing:
            return self._max_send_rate
        async with self._quota_lock, self._in_flight():
            if self._max_send_rate is not None:
                return self._max_send_rate
            failed_at = self._quota_failed_at
            if failed_at is not None and time.monotonic() - failed_at < _QUOTA_RETRY_SECONDS:
                return None
            try:
                client = await self._ready_client()
                account = await self._in_thread(client.get_account)
                self._max_send_rate = float(account["SendQuota"]["MaxSendRate"])
            except (BotoCoreError, ClientError, KeyError, TypeError, ValueError) as exc:
                self._quota_failed_at = time.monotonic()
                # Only the first line: a stray proxy or stand-in may answer with a whole page.
                problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.warning("cannot read the SES sending quota in %s: %s", self.region, problem)
                return None
            return self._max_send_rate

    async def close(self) -> None:
        """Refuse new sends, let in-flight ones finish, then release the client and threads."""
        self._is_closing = True
        await self._no_calls_in_flight.wait()
        client, self._client = self._client, None
        if client is not None:
            await self._in_thread(client.close)
        self._threads.shutdown(wait=False)

    async def _send_once(self, envelope: Envelope) -> Outcome:
        request: dict[str, Any] = {
            "Destination": {"ToAddresses": [envelope.recipient]},
            "Content": {"Raw": {"Data": to_wire_format(envelope.data)}},
        }
        if envelope.sender:  # for the null sender, SES takes the From header's address
            request["FromEmailAddress"] = envelope.sender
        if self.configuration_set is not None:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            client = await self._ready_client()
            response = await self._in_thread(lambda: client.send_email(**request))
        except (BotoCoreError, ClientError) as exc:
            return classify_error(exc)
        message_id = str(response["MessageId"])
        return Accepted(f"250 SES MessageId {message_id}", queue_id=message_id)

    @contextlib.asynccontextmanager
    async def _in_flight(self) -> AsyncIterator[None]:
        # close() waits for these, so the client and threads outlive every call made on them.
        self._calls_in_flight += 1
        self._no_calls_in_flight.clear()
        try:
            yield
        finally:
            self._calls_in_flight -= 1
            if self._calls_in_flight == 0:
                self._no_calls_in_flight.set()

    async def _ready_client(self) -> Any:
        # Building a client reads credential files and endpoint data: once, off the event loop.
        async with self._client_lock:
            if self._client is None:
                self._client = await self._in_thread(self._new_client)
            return self._client

    def _new_client(self) -> Any:
        config = Config(
            max_pool_connections=self.pool_size,
            retries={"total_max_attempts": 1},
            connect_timeout=self.timeout_seconds,
            read_timeout=self.timeout_seconds,
        )
        # A session of our own: boto3's default session is a module-level global.
        return boto3.session.Session().client("sesv2", region_name=self.region, config=config)

    async def _in_thread(self, call: Callable[[], _Result]) -> _Result:
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)
