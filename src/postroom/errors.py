"""PostroomError: the single source of every error code, HTTP status and message users see."""

from __future__ import annotations

from typing import Any


class PostroomError(Exception):
    """A failure with a stable snake_case ``code``, an HTTP ``status`` and a human sentence.

    Only the API layer turns these into responses; nothing below it knows about HTTP beyond
    the status number carried here.
    """

    code: str = "internal_error"
    status: int = 500

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details: dict[str, Any] = details or {}

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class BadRequest(PostroomError):
    code = "bad_request"
    status = 400


class Unauthorized(PostroomError):
    code = "unauthorized"
    status = 401


class Forbidden(PostroomError):
    code = "forbidden"
    status = 403


class NotFound(PostroomError):
    code = "not_found"
    status = 404


class Conflict(PostroomError):
    code = "conflict"
    status = 409


class Gone(PostroomError):
    code = "gone"
    status = 410


class PayloadTooLarge(PostroomError):
    code = "payload_too_large"
    status = 413


class UnsupportedMediaType(PostroomError):
    code = "unsupported_media_type"
    status = 415


class Unprocessable(PostroomError):
    code = "unprocessable"
    status = 422


class RateLimited(PostroomError):
    """Too many requests with one API key; ``details`` says when the next one may come."""

    code = "rate_limited"
    status = 429


class QuotaExceeded(PostroomError):
    """A tenant quota would be crossed; ``details`` names it (``quota``) with its ``limit``
    and what was ``requested`` (and ``used`` so far, for the daily one). The status is set
    by the quota: 413 for a file's size, 422 for a file's rows, 403 for the daily messages."""

    code = "quota_exceeded"
    status = 403


class FileRejected(Unprocessable):
    """A recipient file that cannot be processed as a whole (not_csv, malformed_csv, ...).

    It fails the campaign; ``code`` names the rule that was broken.
    """

    code = "file_rejected"


class BlobUnreadable(PostroomError):
    """A stored blob that cannot be read back: it failed authentication (changed, cut short
    or damaged on disk) or was encrypted under a storage key this server does not have."""

    code = "blob_unreadable"
    status = 500


class ConfigError(Exception):
    """Bad configuration: start-up stops with this one line, naming the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
