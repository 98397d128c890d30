"""The Python SDK for the Postroom HTTP API: ``Client`` (blocking) and ``AsyncClient``."""

from postroom.client.aio import AsyncClient
from postroom.client.errors import (
    ApiError,
    CampaignFailed,
    Conflict,
    NotFound,
    PostroomError,
    RateLimited,
    ServerError,
    TemplateInvalid,
    TransportError,
    Unauthorized,
    ValidationFailed,
    WaitTimeout,
)
from postroom.client.models import (
    Campaign,
    CampaignStatus,
    Counts,
    Message,
    Suppression,
    Template,
    UploadedFile,
)
from postroom.client.sync import Client
from postroom.client.webhooks import WebhookSignatureInvalid, verify_webhook

__all__ = [
    "ApiError",
    "AsyncClient",
    "Campaign",
    "CampaignFailed",
    "CampaignStatus",
    "Client",
    "Conflict",
    "Counts",
    "Message",
    "NotFound",
    "PostroomError",
    "RateLimited",
    "ServerError",
    "Suppression",
    "Template",
    "TemplateInvalid",
    "TransportError",
    "Unauthorized",
    "UploadedFile",
    "ValidationFailed",
    "WaitTimeout",
    "WebhookSignatureInvalid",
    "verify_webhook",
]
