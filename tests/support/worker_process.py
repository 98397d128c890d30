"""`postroom worker` as a real OS process: configured by POSTROOM_* variables, stopped by
SIGKILL or SIGTERM, its output kept in a log file."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.live_server import free_port

POSTROOM = str(Path(sys.executable).parent / "postroom")


class WorkerProcess:
    def __init__(self, env: dict[str, str], cwd: Path, log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [POSTROOM, "worker"], env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self, timeout_seconds: float) -> int:
        """SIGTERM, then the exit code (raises subprocess.TimeoutExpired past the bound)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_seconds)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop_if_running(self) -> None:
        if self.is_running():
            self.kill()


def worker_env(
    *, database_url: str, storage_url: str, transport_url: str, **settings: str
) -> dict[str, str]:
    """The test process's environment without its POSTROOM_* variables, plus these settings
    (``send_batch_size="100"`` becomes POSTROOM_SEND_BATCH_SIZE=100)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTROOM_")}
    env.update(
        POSTROOM_DATABASE_URL=database_url,
        POSTROOM_STORAGE_URL=storage_url,
        POSTROOM_TRANSPORT_URL=transport_url,
    )
    env.update({f"POSTROOM_{name.upper()}": value for name, value in settings.items()})
    return env


@contextlib.contextmanager
def worker_with_metrics_port(env: dict[str, str], cwd: Path) -> Iterator[str]:
    """``postroom worker --metrics-port`` on a free port, yielding the port's base URL once
    its /metrics answers; on leaving, SIGTERM and a check that the worker stopped cleanly
    (exit code 0, no traceback)."""
    metrics_port = free_port()
    worker = subprocess.Popen(
        [POSTROOM, "worker", "--metrics-port", str(metrics_port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{metrics_port}"
    try:
        _wait_for_metrics(f"{base}/metrics", worker)
        yield base
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, output
    assert "Traceback" not in output, output


def _wait_for_metrics(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the worker's metrics port did not answer")
