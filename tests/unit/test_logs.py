"""JSON log lines: one object per line, tagged from ``extra=`` and ``log_context``, with the
traceback when there is one; and the setting that picks the format."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from datetime import datetime

import pytest

from postroom.config import load_settings
from postroom.errors import ConfigError
from postroom.observability.logs import JsonFormatter, configure_logging, log_context


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own writing JSON into a buffer (the root logger is pytest's)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("postroom.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, buffer
    finally:
        logger.removeHandler(handler)


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_a_line_is_one_json_object(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = logged
    logger.info("sent %d of %s", 3, "ünïcode\nand a newline")
    [line] = lines(buffer)
    assert set(line) == {"time", "level", "logger", "message"}
    assert line["level"] == "INFO"
    assert line["logger"] == "postroom.test_logs"
    assert line["message"] == "sent 3 of ünïcode\nand a newline"
    when = datetime.fromisoformat(str(line["time"]))
    assert when.utcoffset() is not None and when.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_ids_come_from_extra_and_from_the_context(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = logged
    logger.info("from extra", extra={"campaign_id": "cmp_1", "message_id": "m1@x"})
    with log_context(campaign_id="cmp_2", worker_id="w1"):
        logger.info("from context")
        with log_context(message_id="m2@x"):
            logger.info("nested")
        logger.info("extra wins", extra={"campaign_id": "cmp_3"})
        thread = threading.Thread(target=logger.info, args=("other thread",))
        thread.start()
        thread.join()
    logger.info("after")
    extra, context, nested, override, other_thread, after = lines(buffer)
    assert (extra["campaign_id"], extra["message_id"]) == ("cmp_1", "m1@x")
    assert (context["campaign_id"], context["worker_id"]) == ("cmp_2", "w1")
    assert "message_id" not in context
    assert (nested["campaign_id"], nested["message_id"]) == ("cmp_2", "m2@x")
    assert override["campaign_id"] == "cmp_3"
    # A plain thread starts with an empty context; asyncio.to_thread and tasks copy it.
    assert "campaign_id" not in other_thread
    assert not {"campaign_id", "message_id", "worker_id"} & set(after)


def test_log_context_names_only_the_known_fields() -> None:
    with pytest.raises(ValueError, match="tenant"), log_context(tenant="t"):
        pass


def test_an_exception_comes_with_its_traceback(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = logged
    try:
        raise RuntimeError("relay exploded")
    except RuntimeError:
        logger.exception("send step failed", extra={"campaign_id": "cmp_9"})
    [line] = lines(buffer)
    assert line["level"] == "ERROR" and line["message"] == "send step failed"
    assert line["campaign_id"] == "cmp_9"
    assert str(line["exc"]).startswith("Traceback (most recent call last)")
    assert "RuntimeError: relay exploded" in str(line["exc"])


def test_bad_log_format_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTROOM_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="POSTROOM_LOG_FORMAT") as raised:
        load_settings()
    assert "'text' or 'json'" in str(raised.value)
    monkeypatch.setenv("POSTROOM_LOG_FORMAT", "json")
    assert load_settings().log_format == "json"
    with pytest.raises(ValueError, match="xml"):
        configure_logging("xml")
