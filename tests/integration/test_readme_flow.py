"""The README's curl flow works when pasted into a shell against `postroom serve`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.integration.test_cli import POSTROOM, wait_for_health
from tests.support.live_server import free_port

ROOT = Path(__file__).parents[2]


def readme_curl_script() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A campaign with curl", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def test_the_readme_curl_flow_runs_as_written(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTROOM_")}
    env["POSTROOM_BASE_URL"] = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [POSTROOM, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_health(f"http://127.0.0.1:{port}")
        script = readme_curl_script().replace("127.0.0.1:8025", f"127.0.0.1:{port}")
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert result.returncode == 0, result.stderr
    assert '"status":"ready"' in result.stdout
    assert '"status":"completed"' in result.stdout
    assert '"sent":2' in result.stdout
    assert "4,not-an-address,invalid_email" in result.stdout
