"""One error shape for every failure: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from postroom.errors import PostroomError

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any]


class ErrorBody(BaseModel):
    """Every error response has this shape."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries so the document describes each error a route can answer."""
    return {status: {"model": ErrorBody} for status in statuses}


_ERROR_BODY_REF = {"$ref": "#/components/schemas/ErrorBody"}
_FASTAPI_422_REF = {"$ref": "#/components/schemas/HTTPValidationError"}
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def describe_request_errors(document: dict[str, Any]) -> dict[str, Any]:
    """Make an OpenAPI ``document`` say what the handlers below answer, in place.

    FastAPI documents its own 422 body (``HTTPValidationError``) where ours is an ErrorBody,
    and leaves out the 400 it answers for a body it cannot parse (bytes that are not UTF-8,
    for one); schemathesis found both.
    """
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "requestBody" in operation and "400" not in responses:
                responses["400"] = _error_entry("Bad Request")
            validation = responses.get("422", {}).get("content", {}).get("application/json")
            if validation is not None and validation.get("schema") == _FASTAPI_422_REF:
                responses["422"] = _error_entry("Validation Error")
    schemas = document.get("components", {}).get("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    return document


def _error_entry(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ERROR_BODY_REF}},
    }


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def error_response(error: PostroomError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.to_body(), status_code=error.status, headers=headers)


def bearer_challenge(error: PostroomError) -> dict[str, str] | None:
    """The ``WWW-Authenticate`` header RFC 6750 asks of a refused bearer credential (an API key
    or an OAuth token): 401 names it invalid unless none was sent, 403 names the scope."""
    if error.status == 401:
        problem = "" if error.code == "missing_api_key" else ', error="invalid_token"'
        return {"WWW-Authenticate": f'Bearer realm="postroom"{problem}'}
    if error.code == "missing_scope":
        scope = error.details.get("scope", "")
        return {
            "WWW-Authenticate": f'Bearer realm="postroom", error="insufficient_scope", '
            f'scope="{scope}"'
        }
    return None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PostroomError)
    async def _postroom(_request: Request, exc: PostroomError) -> JSONResponse:
        return error_response(exc, headers=bearer_challenge(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"field": "", "message": "invalid request"}
        return error_response(
            PostroomError(
                f"{first['field']}: {first['message']}" if first["field"] else first["message"],
                code="invalid_request",
                status=422,
                details={"errors": problems},
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(PostroomError(message, code=code, status=exc.status_code))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return error_response(
            PostroomError("Something went wrong on our side; it has been logged.")
        )
