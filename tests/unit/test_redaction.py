"""Secrets are masked in every shape a log line takes: the message, its arguments (uvicorn's
access lines format theirs themselves), exceptions and their tracebacks, in both formats."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest

from postroom.observability.logs import UVICORN_LOGGERS, configure_logging
from postroom.observability.redaction import SecretRedactor, redact

API_KEY = "pr_0123456789abcdef01234567_Zm9v-YmFy_c2VjcmV0LXNlY3JldA"
KEY_SECRET = API_KEY.split("_", 2)[2]
WEBHOOK_SECRET = "whsec_AbCd-Ef_1234567890abcdefghijkl"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key " + API_KEY, "key pr_0123456789abcdef01234567_***"),
        (WEBHOOK_SECRET, "whsec_***"),
        (
            "smtp://mailer:p%40ss@relay.example.com:587?tls=starttls",
            "smtp://mailer:***@relay.example.com:587?tls=starttls",
        ),
        (
            "postgresql+psycopg://app:hunter2@db:5432/postroom",
            "postgresql+psycopg://app:***@db:5432/postroom",
        ),
        ("imaps://bounces:pw@imap.example.com/INBOX", "imaps://bounces:***@imap.example.com/INBOX"),
        (
            "PUT /uploads/k.csv?expires=1&max=9&ct=text%2Fcsv&sig=AbC HTTP/1.1",
            "PUT /uploads/k.csv?expires=1&max=9&ct=text%2Fcsv&sig=*** HTTP/1.1",
        ),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Signature=abc&X-Amz-Credential=AKIA/x",
            "https://b.s3.amazonaws.com/k?X-Amz-Signature=***&X-Amz-Credential=***",
        ),
        (
            "https://hooks.example.com/in?token=t0k&x=1",
            "https://hooks.example.com/in?token=***&x=1",
        ),
        ("GET /u/42.sIgNaTuRe_-x HTTP/1.1", "GET /u/42.*** HTTP/1.1"),
        ("Authorization: Bearer abcdefgh12345678", "Authorization: Bearer ***"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected  # redacting twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:8025/campaigns?email=ann@example.com",
        "mailto:bounces+u-1-abc@example.com?subject=unsubscribe",
        "worker vm:745:7f28ef8cfc90 started",
        "campaign cmp_2e0f2a711a951abc36ac failed",
        "ann@example.com: 550 5.1.1 user unknown",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def _record(msg: str, args: object = None, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, msg, args, exc_info)  # type: ignore[arg-type]
    SecretRedactor().filter(record)
    return record


def test_string_arguments_are_redacted_in_place() -> None:
    """uvicorn's access formatter unpacks ``record.args``: its shape has to stay."""
    record = _record(
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/api/v1/campaigns?api_key={API_KEY}", "1.1", 200),
    )
    assert isinstance(record.args, tuple) and len(record.args) == 5
    assert record.args[2] == "/api/v1/campaigns?api_key=***"
    assert record.args[4] == 200


def test_a_secret_inside_another_argument_flattens_the_line() -> None:
    record = _record("poll failed: %s (%d tries)", (ValueError(f"login {API_KEY}"), 3))
    assert record.getMessage() == "poll failed: login pr_0123456789abcdef01234567_*** (3 tries)"


def test_tracebacks_are_redacted() -> None:
    try:
        raise ConnectionError("cannot reach smtp://mailer:hunter2@relay.example.com")
    except ConnectionError as exc:
        record = _record("send failed", exc=exc)
    assert record.exc_text is not None
    assert "hunter2" not in record.exc_text
    assert "smtp://mailer:***@relay.example.com" in record.exc_text


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put pytest's back afterwards."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved = {
        name: (lg.handlers[:], lg.filters[:], lg.propagate, lg.level)
        for name in UVICORN_LOGGERS
        for lg in [logging.getLogger(name)]
    }
    try:
        yield
    finally:
        root.handlers[:], root.level = saved_root
        for name, (handlers, filters, propagate, level) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:], logger.filters[:] = handlers, filters
            logger.propagate, logger.level = propagate, level


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_configured_logging_masks_every_line(
    log_format: str, restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(log_format)
    # In text mode uvicorn keeps handlers of its own (set up after ours): the logger's
    # filter must still apply to them.
    access = logging.getLogger("uvicorn.access")
    access.setLevel(logging.INFO)  # a live server earlier in the session set WARNING
    if log_format == "text":
        own = logging.StreamHandler(sys.stderr)
        access.handlers[:] = [own]
        access.propagate = False
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "PUT", "/uploads/x?sig=SIG1", "1.1", 201)
    app = logging.getLogger("postroom.test_redaction")
    app.warning("created %s for %s", WEBHOOK_SECRET, "https://u:pw1@hooks.example.com/x")
    try:
        raise RuntimeError(f"rejected {API_KEY}")
    except RuntimeError:
        app.exception("request failed")
    logging.getLogger("uvicorn.error").error("cannot bind", exc_info=RuntimeError(API_KEY))
    err = capsys.readouterr().err
    for secret in ("SIG1", WEBHOOK_SECRET, "pw1", KEY_SECRET):
        assert secret not in err, err
    assert "sig=***" in err and "whsec_***" in err and "u:***@hooks" in err
    if log_format == "json":
        records = [json.loads(line) for line in err.splitlines()]
        assert {r["logger"] for r in records} >= {"uvicorn.access", "uvicorn.error"}
        assert all("pr_0123456789abcdef01234567_***" in r["exc"] for r in records if "exc" in r)
