"""What an Amazon SES failure means for one message: a Transient or a Permanent outcome."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as EndpointUnreachable

from postroom.transports.base import Permanent, Transient

THROTTLING_CODES = frozenset({"TooManyRequestsException", "ThrottlingException", "Throttling"})
# SES's v1 API and the classic Query errors still say this when the per-second rate is hit.
_THROTTLING_TEXT = "maximum sending rate exceeded"
# Problems of the account or its set-up: every message would hit them, so none is to blame.
ACCOUNT_CODES = frozenset(
    {
        "AccountSuspendedException",
        "SendingPausedException",
        "LimitExceededException",  # the daily sending quota
        "NotFoundException",  # the configuration set does not exist
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredTokenException",
        "ExpiredToken",
    }
)
MESSAGE_CODES = frozenset(
    {
        "MessageRejected",
        "MailFromDomainNotVerifiedException",
        "BadRequestException",
        "InvalidParameterValue",
    }
)
SERVER_CODES = frozenset({"InternalFailure", "InternalServerError", "ServiceUnavailable"})


def classify_error(error: Exception) -> Transient | Permanent:
    """The outcome of a SendEmail call that raised ``error`` (a botocore exception).

    Throttling is a Transient with ``throttled``; a refusal of this message (rejected
    content, an unusable address, an unverified sender) is Permanent; anything about the
    account, its credentials or reaching SES is transport-level, so sending pauses and no
    recipient is blamed. When the request may have reached SES before the connection
    failed, the Transient says ``possible_duplicate``.
    """
    if isinstance(error, ClientError):
        return _classify_client_error(error)
    if isinstance(error, ReadTimeoutError | ConnectionClosedError):
        return Transient(
            f"{error} (SES may have the message)", transport_level=True, possible_duplicate=True
        )
    if isinstance(error, EndpointUnreachable):
        # Connecting failed (refused, timed out, TLS, proxy): nothing was sent.
        return Transient(str(error), transport_level=True)
    if isinstance(error, HTTPClientError):
        # Some other failure of the HTTP exchange: when it happened cannot be told.
        return Transient(
            f"{error} (SES may have the message)", transport_level=True, possible_duplicate=True
        )
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return Transient(f"AWS credentials: {error}", transport_level=True)
    if isinstance(error, BotoCoreError):
        return Transient(f"SES client: {error}", transport_level=True)
    return Transient(f"SES client: {type(error).__name__}: {error}", transport_level=True)


def _classify_client_error(error: ClientError) -> Transient | Permanent:
    details = error.response.get("Error", {})
    code = str(details.get("Code", "") or "Unknown")
    message = str(details.get("Message", "") or "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    reason = f"{code}: {message}" if message else code
    if code in THROTTLING_CODES or _THROTTLING_TEXT in message.lower():
        return Transient(reason, throttled=True)
    if code in ACCOUNT_CODES:
        return Transient(reason, transport_level=True)
    if code in MESSAGE_CODES:
        if "configuration set" in message.lower():
            return Transient(reason, transport_level=True)  # our set-up, not this message
        return Permanent(reason, code=None)
    if code in SERVER_CODES or (isinstance(status, int) and status >= 500):
        return Transient(reason)
    # An error SES does not document for SendEmail: do not blame the message; pause instead.
    return Transient(f"unexpected SES error {reason}", transport_level=True)
