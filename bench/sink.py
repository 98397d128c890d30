"""The SMTP sink mail is sent to: Postfix's smtp-sink (a C program, so the sink is never the
thing measured), or, for smoke runs where it is not installed, a small aiosmtpd sink."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
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
    #: Where smtp-sink writes its running counters (``running_sink(count=True)``).
    counters: Path | None = None

    @property
    def transport_url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?tls=none"

    def received(self) -> int:
        """Messages the sink has taken so far (its ``mesg=`` counter)."""
        if self.counters is None:
            raise RuntimeError("this sink does not count; start it with count=True")
        with self.counters.open("rb") as fh:
            fh.seek(max(fh.seek(0, 2) - 200, 0))
            found = re.findall(rb"mesg=(\d+)", fh.read())
        return int(found[-1]) if found else 0


def smtp_sink_available() -> bool:
    return shutil.which("smtp-sink") is not None or Path(SMTP_SINK).exists()


@contextmanager
def running_sink(*, require_smtp_sink: bool, count: bool = False) -> Iterator[Sink]:
    """smtp-sink on a free port (or the aiosmtpd sink, when allowed); with ``count`` it keeps
    its running counters (``-c``) in a file that ``Sink.received()`` reads."""
    port = free_port()
    if smtp_sink_available():
        binary = shutil.which("smtp-sink") or SMTP_SINK
        command = [binary, *(["-c"] if count else []), "-u", "nobody", f"127.0.0.1:{port}", "1024"]
        kind = "smtp-sink"
    elif require_smtp_sink or count:
        raise RuntimeError("smtp-sink is missing: `make bench` installs Debian's postfix")
    else:
        command = [sys.executable, "-m", "bench.aiosmtpd_sink", str(port)]
        kind = "aiosmtpd"
    with tempfile.TemporaryDirectory(prefix="postroom-sink-") as tmp:
        counters = Path(tmp) / "counters" if count else None
        output = counters.open("wb") if counters else subprocess.DEVNULL
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.DEVNULL)
        try:
            _wait_listening(port)
            yield Sink(port, kind, counters)
        finally:
            process.terminate()
            process.wait(timeout=10)
            if counters:
                output.close()  # type: ignore[union-attr]


def _wait_listening(port: int) -> None:
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("the SMTP sink did not start")
