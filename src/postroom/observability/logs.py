"""Log output: ``text`` for people at a terminal, ``json`` (one object per line) for log
collectors; and ``log_context`` to tag every line logged in a block with a campaign, a
message or a worker."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType

from sqlalchemy.exc import InterfaceError, OperationalError

from postroom.observability.redaction import SecretRedactor

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
#: What a line may be tagged with, through ``extra=`` or ``log_context``.
CONTEXT_FIELDS = ("campaign_id", "message_id", "worker_id", "request_id")
#: Uvicorn configures these itself unless told not to; in json they must reach our handler.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

_context: ContextVar[Mapping[str, str]] = ContextVar(
    "postroom_log_context", default=MappingProxyType({})
)


@contextmanager
def log_context(**fields: str) -> Iterator[None]:
    """Tag every line logged inside the block (and in tasks and threads it starts, which copy
    the context) with ``fields``, e.g. ``log_context(campaign_id=...)``."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"log_context takes {', '.join(CONTEXT_FIELDS)}, not {sorted(unknown)}")
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO-8601, UTC), level, logger, message, the context
    fields that are set, and ``exc`` (the formatted traceback) when there is an exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_context.get())
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_text:  # already formatted (and redacted) by SecretRedactor
            line["exc"] = record.exc_text
        elif record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(format: str, *, level: int = logging.INFO) -> None:
    """Send all logging to stderr in ``format`` (``text`` or ``json``), replacing any handler
    the root logger had. With ``json`` uvicorn's loggers lose their own handlers and go
    through the root's, so run uvicorn with ``log_config=None`` then.

    Every line, uvicorn's included (with ``text`` it keeps its own handlers), passes through
    ``SecretRedactor`` first: API keys, passwords and signatures never reach the output."""
    if format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {format!r}; expected one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else logging.Formatter(TEXT_FORMAT))
    redactor = SecretRedactor()
    handler.addFilter(redactor)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in UVICORN_LOGGERS:
        # A logger's filters apply to the records it creates, whichever handlers then get
        # them, and survive uvicorn's own logging setup (which replaces only handlers).
        logger = logging.getLogger(name)
        if not any(isinstance(f, SecretRedactor) for f in logger.filters):
            logger.addFilter(redactor)
    if format == "json":
        for name in UVICORN_LOGGERS:
            logger = logging.getLogger(name)
            for old in logger.handlers[:]:
                logger.removeHandler(old)
            logger.propagate = True


def log_step_failure(logger: logging.Logger, step: str, exc: Exception) -> None:
    """A database that is restarting or unreachable is an outage, not a bug: one line each
    time (the step is retried on the next poll, on a fresh connection); anything else gets
    its traceback."""
    if isinstance(exc, OperationalError | InterfaceError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        logger.warning("%s step: database unavailable (%s); retrying", step, reason)
    else:
        logger.exception("%s step failed", step, exc_info=exc)
