"""`postroom worker` as a real OS process: configured by POSTROOM_* variables, stopped by
SIGKILL or SIGTERM, its output kept in a log file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

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
