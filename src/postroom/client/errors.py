"""The SDK's exceptions: one base, API errors by HTTP status, transport and waiting."""

from __future__ import annotations

from typing import Any


class PostroomError(Exception):
    """Base of everything the SDK raises on purpose."""


class ApiError(PostroomError):
    """The server answered with an error body ``{"error": {"code", "message", "details"}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.request_id = request_id


class NotFound(ApiError):
    """404."""


class Conflict(ApiError):
    """409."""


class ValidationFailed(ApiError):
    """400 or 422."""


class Unauthorized(ApiError):
    """401 or 403."""


class RateLimited(ApiError):
    """429, still after the retries."""


class ServerError(ApiError):
    """5xx, still after the retries."""


class TransportError(PostroomError):
    """The server could not be reached (connection refused, timeout) after the retries."""


class TemplateInvalid(PostroomError):
    """The uploaded template was processed and found invalid; ``errors`` lists why."""

    def __init__(self, template_id: str, errors: list[dict[str, Any]]) -> None:
        lines = "; ".join(str(e.get("message")) for e in errors)
        super().__init__(f"template {template_id} is invalid: {lines}")
        self.template_id = template_id
        self.errors = errors


class CampaignFailed(PostroomError):
    """``wait`` saw the campaign end as ``failed``."""

    def __init__(self, campaign: Any) -> None:
        super().__init__(f"campaign {campaign.id} failed: {campaign.error}")
        self.campaign = campaign


class WaitTimeout(PostroomError):
    """``wait`` ran out of time before the campaign finished."""

    def __init__(self, campaign: Any) -> None:
        super().__init__(f"campaign {campaign.id} still {campaign.status}")
        self.campaign = campaign


_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationFailed,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
    429: RateLimited,
}


def api_error(status: int, body: Any, request_id: str | None) -> ApiError:
    """The exception for an error answer; tolerant of bodies that are not ours (a proxy)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"code": f"http_{status}", "message": str(body)[:500]}
    cls = ServerError if status >= 500 else _BY_STATUS.get(status, ApiError)
    return cls(
        status,
        str(error.get("code", f"http_{status}")),
        str(error.get("message", "")),
        error.get("details"),
        request_id,
    )
