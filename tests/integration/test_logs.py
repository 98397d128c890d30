"""``POSTROOM_LOG_FORMAT=json`` as a log collector sees it: every line ``postroom serve``
writes to stderr, uvicorn's included, is one JSON object."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import httpx

from tests.integration.test_cli import POSTROOM, embedded_env, wait_for_health
from tests.support.live_server import free_port


def test_serve_logs_json_lines(tmp_path: Path) -> None:
    port = free_port()
    env = embedded_env(port) | {"POSTROOM_LOG_FORMAT": "json"}
    process = subprocess.Popen(
        [POSTROOM, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_health(f"http://127.0.0.1:{port}")
        assert httpx.get(f"http://127.0.0.1:{port}/no/such/page").status_code == 404
        process.send_signal(signal.SIGTERM)
        _banner, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lines = [json.loads(line) for line in stderr.splitlines()]  # every line parses
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    by_logger = {(line["logger"], line["message"]) for line in lines}
    assert ("uvicorn.error", "Application startup complete.") in by_logger
    assert any(
        logger == "uvicorn.access" and "/no/such/page" in message for logger, message in by_logger
    )
    started = [line for line in lines if str(line["message"]).startswith("worker ")]
    assert started and all(line["logger"] == "postroom.worker.loop" for line in started)
    assert all(str(line["worker_id"]) in str(line["message"]) for line in started)
    assert {str(line["message"]).split()[2] for line in started} == {"started", "stopped"}
