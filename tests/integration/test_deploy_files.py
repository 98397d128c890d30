"""The Dockerfile and compose.yaml kept honest without Docker: compose.yaml is valid against the
Compose Specification's schema (vendored, see tests/fixtures/SOURCES.md) and agrees with the
code: the commands and options exist, every POSTROOM_* variable is a setting, every Postroom
container shares one secret key, the health checks reach real routes on the right ports. With
a Docker client that has the compose plug-in, ``docker compose config`` checks it too."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import typer.main
import yaml

from postroom.api.app import create_app
from postroom.cli.main import app as cli_app
from postroom.config import Settings
from postroom.runtime import build_runtime
from tests.conftest import make_settings

ROOT = Path(__file__).parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
COMPOSE_SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec" / "compose-spec.json"
COMPOSE_ENV = {"POSTGRES_PASSWORD": "pw0123456789", "POSTROOM_SECRET_KEY": "k" * 32}
CLI: Any = typer.main.get_command(cli_app)  # a click group: its commands by name


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def substituted(value: str) -> str:
    """``value`` with ``${NAME...}`` replaced as Compose would, given COMPOSE_ENV (defaults
    of ``${NAME:-default}`` for the rest)."""

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(3) or ""
        return COMPOSE_ENV.get(name, default if match.group(2) == ":-" else "")

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def postroom_services(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    image = document["x-postroom"]["image"]
    return {n: s for n, s in document["services"].items() if s.get("image") == image}


def app_paths(tmp_path: Path) -> set[str]:
    settings = make_settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, 8025)
    rt = build_runtime(settings, var_dir=tmp_path / "var")
    try:
        return set(create_app(rt).openapi()["paths"])
    finally:
        rt.close()


def check_command(argv: list[str]) -> dict[str, str]:
    """``argv`` (after the ``postroom`` entry point) names a real command with real options;
    returns the options given, by name."""
    command = CLI.commands.get(argv[0])
    assert command is not None, f"no postroom command {argv[0]!r}"
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    given = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert set(given) <= options, (argv, options)
    return given


def default_of(command: str, option: str) -> Any:
    params = CLI.commands[command].params
    return next(p.default for p in params if option in getattr(p, "opts", []))


def probe_url(test: list[str]) -> str:
    """The URL a ``python -c "...urlopen('URL'...)"`` health check opens."""
    found = re.search(r"urlopen\('([^']+)'", " ".join(test))
    assert found, test
    return found.group(1)


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    document = compose()
    assert [error.message for error in validator.iter_errors(document)] == []
    # The check can fail: a condition Compose does not know is refused.
    broken = compose()
    broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_finished"
    assert not validator.is_valid(broken)


def test_every_postroom_container_has_the_same_settings_and_only_real_ones() -> None:
    document = compose()
    services = postroom_services(document)
    assert set(services) == {"migrate", "api", "worker"}
    shared = document["x-postroom"]["environment"]
    for name, service in services.items():
        environment = service["environment"]
        for variable in ("POSTROOM_SECRET_KEY", "POSTROOM_DATABASE_URL", "POSTROOM_BASE_URL"):
            assert environment[variable] == shared[variable], (name, variable)
        assert "${POSTROOM_SECRET_KEY:?" in environment["POSTROOM_SECRET_KEY"]
        for variable in environment:
            assert variable.startswith("POSTROOM_"), (name, variable)
            assert variable.removeprefix("POSTROOM_").lower() in Settings.model_fields, variable
        check_command(service["command"])
    # Values the settings accept as they are (the variables substituted).
    values = {
        key.removeprefix("POSTROOM_").lower(): substituted(value)
        for key, value in services["worker"]["environment"].items()
    }
    Settings(**values)


def test_the_services_connect_where_the_others_listen() -> None:
    document = compose()
    services = document["services"]
    environment = document["x-postroom"]["environment"]
    database = urlsplit(substituted(environment["POSTROOM_DATABASE_URL"]))
    postgres = services[database.hostname or ""]["environment"]
    assert postgres["POSTGRES_USER"] == database.username
    assert database.path == "/" + postgres["POSTGRES_DB"]
    assert database.password == substituted(postgres["POSTGRES_PASSWORD"])
    assert database.port == 5432
    assert urlsplit(environment["POSTROOM_TRANSPORT_URL"]).hostname in services
    # The migration runs first, after PostgreSQL is up; the API and workers wait for it.
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name
    # The API and the workers share the blob store's files.
    storage = Path(urlsplit(environment["POSTROOM_STORAGE_URL"]).path)
    for name in ("api", "worker"):
        volume, target = services[name]["volumes"][0].split(":")[:2]
        assert volume in document["volumes"]
        assert storage.is_relative_to(target), name
    assert services["worker"]["deploy"]["replicas"] >= 2


def test_the_ports_and_health_checks_line_up(tmp_path: Path) -> None:
    document = compose()
    services = document["services"]
    paths = app_paths(tmp_path)
    api = services["api"]
    options = check_command(api["command"])
    port = int(options.get("--port", default_of("api", "--port")))
    assert options["--host"] == "0.0.0.0"  # reachable from the other containers
    published = [str(mapping).rsplit(":", 1) for mapping in api["ports"]]
    assert [(host, int(container)) for host, container in published] == [("8025", port)]
    health = urlsplit(probe_url(api["healthcheck"]["test"]))
    assert (health.hostname, health.port) == ("127.0.0.1", port)
    assert health.path in paths
    base_url = substituted(document["x-postroom"]["environment"]["POSTROOM_BASE_URL"])
    assert urlsplit(base_url).port == int(published[0][0])  # the default: the published port
    worker = services["worker"]
    metrics_port = int(worker["environment"]["POSTROOM_WORKER_METRICS_PORT"])
    worker_health = urlsplit(probe_url(worker["healthcheck"]["test"]))
    assert (worker_health.port, worker_health.path) == (metrics_port, "/healthz")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            found.append((instruction.upper(), arguments.strip()))
    return found


def test_the_dockerfile_builds_from_real_files_and_runs_real_commands(tmp_path: Path) -> None:
    instructions = dockerfile_instructions()
    by_name: dict[str, list[str]] = {}
    for name, arguments in instructions:
        by_name.setdefault(name, []).append(arguments)
    python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert by_name["FROM"][-1] == f"python:{python.removeprefix('>=')}-slim"
    ignored = {line for line in (ROOT / ".dockerignore").read_text().splitlines() if line}
    for arguments in by_name["COPY"]:
        words = [w for w in shlex.split(arguments) if not w.startswith("--")]
        if "--from" not in arguments:
            for source in words[:-1]:
                assert (ROOT / source).exists(), source
                assert source not in ignored, source
    assert {".git", ".venv", ".env", "var"} <= ignored
    entrypoint = json.loads(by_name["ENTRYPOINT"][-1])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == ["postroom"] and "postroom" in scripts
    command = json.loads(by_name["CMD"][-1])
    options = check_command(command)
    assert command[0] == "api" and options["--host"] == "0.0.0.0"
    port = int(options.get("--port", default_of("api", "--port")))
    assert by_name["EXPOSE"] == [str(port)]
    user = by_name["USER"][-1].split(":")[0]
    assert user not in ("root", "0")
    health = by_name["HEALTHCHECK"][-1]
    check = json.loads(health[health.index("CMD ") + 4 :])
    url = urlsplit(probe_url(check))
    assert (url.hostname, url.port) == ("127.0.0.1", port)
    assert url.path in app_paths(tmp_path)
    assert any("-r requirements.lock" in run for run in by_name["RUN"])
    assert any("--no-deps" in run and "postroom-" in run for run in by_name["RUN"])


def test_docker_compose_accepts_the_file() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client here; the schema test above checks compose.yaml")
    plugin = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    if plugin.returncode != 0:
        pytest.skip("the docker client has no compose plug-in; the schema test checks the file")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", **COMPOSE_ENV},
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_the_iam_policies_in_the_aws_guide_are_valid_json() -> None:
    guide = (ROOT / "docs" / "deploy-aws.md").read_text()
    blocks = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", guide, re.S)]
    policies = [b for b in blocks if isinstance(b, dict) and "Statement" in b]
    assert len(policies) == 3
    for policy in policies:
        assert policy["Version"] == "2012-10-17"
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow" and statement["Action"] != "*"
    # Nothing beyond what the processes need: no wildcard S3 or SES action.
    actions = json.dumps(policies)
    assert '"s3:*"' not in actions and '"ses:*"' not in actions


def test_the_deploy_guides_are_linked_and_name_real_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docs/deploy.md" in readme and "docs/deploy-aws.md" in readme
    for name in ("deploy.md", "deploy-aws.md"):
        text = (ROOT / "docs" / name).read_text()
        for variable in set(re.findall(r"POSTROOM_[A-Z0-9_]+", text)):
            setting = variable.removeprefix("POSTROOM_").lower()
            assert setting in Settings.model_fields, (name, variable)
