"""The SMTP sink mail is sent to: Postfix's smtp-sink (a C program, so the sink is never the
thing measured), or, for smoke runs where it is not installed, a small aiosmtpd sink."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.processes import free_port

SMTP_SINK = "/usr/sbin/smtp-sink"


@dataclass(frozen=True)
class Sink:
    port: int
    kind: str

    @property
    def transport_url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?tls=none"


def smtp_sink_available() -> bool:
    return shutil.which("smtp-sink") is not None or Path(SMTP_SINK).exists()


@contextmanager
def running_sink(*, require_smtp_sink: bool) -> Iterator[Sink]:
    port = free_port()
    if smtp_sink_available():
        binary = shutil.which("smtp-sink") or SMTP_SINK
        command = [binary, "-u", "nobody", f"127.0.0.1:{port}", "1024"]
        kind = "smtp-sink"
    elif require_smtp_sink:
        raise RuntimeError("smtp-sink is missing: `make bench` installs Debian's postfix")
    else:
        command = [sys.executable, "-m", "bench.aiosmtpd_sink", str(port)]
        kind = "aiosmtpd"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port)
        yield Sink(port, kind)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_listening(port: int) -> None:
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("the SMTP sink did not start")
