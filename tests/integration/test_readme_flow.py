"""The README's curl flow works when pasted into a shell against `postroom serve`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.test_cli import embedded_env, start_serve
from tests.support.live_server import free_port

ROOT = Path(__file__).parents[2]


def readme_curl_script() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A campaign with curl", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def test_the_readme_curl_flow_runs_as_written(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    env = embedded_env(port)
    server = start_serve(port, env, tmp_path)
    try:
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
        server.communicate(timeout=30)
    assert result.returncode == 0, result.stderr
    assert '"status":"ready"' in result.stdout
    assert '"status":"completed"' in result.stdout
    assert '"sent":2' in result.stdout
    assert "4,not-an-address,invalid_email" in result.stdout
