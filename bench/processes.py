"""Running Postroom's own processes for a benchmark, and reading what they cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

POSTROOM = str(Path(sys.executable).parent / "postroom")
# One API process per core, as one would deploy on this machine.
API_PROCESSES = os.cpu_count() or 1


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def peak_rss_mb(pid: int) -> float:
    """The process's high-water mark of resident memory (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine_cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How much of all cores was busy between two machine_cpu_ticks() readings."""
    total = after[1] - before[1]
    return round((after[0] - before[0]) / total, 3) if total else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Platform:
    """``postroom api`` plus N ``postroom worker`` processes against one database."""

    workdir: Path
    database_url: str
    transport_url: str
    workers: int = 1
    api_processes: int = API_PROCESSES
    port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POSTROOM_")}
        env.update(
            POSTROOM_DATABASE_URL=self.database_url,
            POSTROOM_STORAGE_URL=f"file://{self.workdir / 'blobs'}",
            POSTROOM_TRANSPORT_URL=self.transport_url,
            POSTROOM_BASE_URL=self.url,
            POSTROOM_SECRET_KEY="bench",
            POSTROOM_POLL_INTERVAL_SECONDS="0.2",
            POSTROOM_SEND_BATCH_SIZE="500",
            POSTROOM_LEASE_SECONDS="600",
            POSTROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES="true",  # the receiver is on 127.0.0.1
            # The bench drives one key far past any sensible request rate.
            POSTROOM_API_RATE_LIMIT="0",
        )
        return env

    def run(self, *args: str) -> str:
        result = subprocess.run(
            [POSTROOM, *args],
            env=self.env(),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return result.stdout

    def start(self) -> str:
        """Migrate, start the API and the workers, and return a fresh tenant's API key."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.run("migrate")
        log = (self.workdir / "api.log").open("wb")
        self.processes.append(
            subprocess.Popen(
                [POSTROOM, "api", "--port", str(self.port), "--processes", str(self.api_processes)],
                env=self.env(),
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        for i in range(self.workers):
            wlog = (self.workdir / f"worker{i}.log").open("wb")
            self.processes.append(
                subprocess.Popen(
                    [POSTROOM, "worker"],
                    env=self.env(),
                    cwd=self.workdir,
                    stdout=wlog,
                    stderr=subprocess.STDOUT,
                )
            )
        self._wait_healthy()
        created = json.loads(self.run("tenant", "create", "bench", "--json"))
        key: str = created["api_key"]
        return key

    @property
    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.processes[1:]]

    @property
    def api_pid(self) -> int:
        return self.processes[0].pid

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 180  # a loaded machine starts processes slowly
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("the API did not start; see " + str(self.workdir / "api.log"))

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
