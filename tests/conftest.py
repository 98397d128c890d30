"""Shared fixtures: databases (SQLite and PostgreSQL), a runtime, a live server on a free
port, a real SMTP relay (aiosmtpd), SES and S3 stand-ins (moto), tenants and API clients."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from postroom.config import Settings
from postroom.db.engine import Database, normalise_database_url
from postroom.db.migrate import migrate
from postroom.runtime import Runtime, build_runtime
from tests.support.counts import assert_counts_match_rows
from tests.support.live_server import LiveServer, free_port
from tests.support.smtp_relay import SmtpRelay

if TYPE_CHECKING:
    from tests.support.moto_s3 import MotoS3
    from tests.support.moto_ses import MotoSes

PG_URL_VARIABLE = "POSTROOM_TEST_DATABASE_URL"
# The CLI's Rich consoles are made when postroom.cli is first imported and take their width
# from COLUMNS then (80 without a terminal): one wide width for every test, whichever test
# happens to import the CLI first.
os.environ.setdefault("COLUMNS", "200")

# Generated inputs (hypothesis, schemathesis) are the same on every run of `make test`, so a
# run passes or fails on the code alone; POSTROOM_HYPOTHESIS_PROFILE=explore draws new ones.
hypothesis_settings.register_profile("fixed", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("POSTROOM_HYPOTHESIS_PROFILE", "fixed"))


def pytest_report_header() -> str:
    url = os.environ.get(PG_URL_VARIABLE)
    if url:
        return f"PostgreSQL tests: {make_url(url).render_as_string(hide_password=True)}"
    return f"PostgreSQL tests: SKIPPED ({PG_URL_VARIABLE} is not set)"


class PostgresDatabases:
    """Creates one migrated template database per test session and a fresh copy per test."""

    def __init__(self, server_url: str) -> None:
        self.server_url = make_url(normalise_database_url(server_url))
        self.admin = create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        self.prefix = f"postroom_t{os.getpid()}_{secrets.token_hex(3)}"
        self.template = f"{self.prefix}_template"
        self.created: list[str] = []
        self._create(self.template)
        db = Database(self.url_for(self.template))
        migrate(db)
        db.dispose()

    def url_for(self, name: str) -> str:
        return self.server_url.set(database=name).render_as_string(hide_password=False)

    def _create(self, name: str, template: str = "template0") -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        self.created.append(name)

    def fresh(self) -> str:
        name = f"{self.prefix}_{len(self.created)}"
        self._create(name, self.template)
        return self.url_for(name)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in reversed(self.created):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases | None]:
    url = os.environ.get(PG_URL_VARIABLE)
    if not url:
        yield None
        return
    databases = PostgresDatabases(url)
    try:
        yield databases
    finally:
        databases.drop_all()


def migrated_sqlite_file(factory: pytest.TempPathFactory) -> Path:
    """One SQLite database migrated once per test session; each test gets a copy of the file
    (a copy takes a millisecond, the migrations a tenth of a second)."""
    path = factory.getbasetemp() / "migrated.sqlite"
    if not path.exists():
        building = path.with_name(f".building-{os.getpid()}.sqlite")
        db = Database(f"sqlite:///{building}")
        migrate(db)
        db.dispose()
        building.replace(path)
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_databases: PostgresDatabases | None,
) -> str:
    """A migrated, empty database: every storage-touching test runs on both backends."""
    if request.param == "sqlite":
        path = tmp_path / "postroom.db"
        shutil.copyfile(migrated_sqlite_file(tmp_path_factory), path)
        return f"sqlite:///{path}"
    if postgres_databases is None:
        pytest.skip(f"PostgreSQL test: set {PG_URL_VARIABLE} to run it")
    return postgres_databases.fresh()


@pytest.fixture
def smtp_relay() -> Iterator[SmtpRelay]:
    relay = SmtpRelay()
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoSes]:
    # Imported here: moto is large, and most tests never talk to SES.
    from tests.support.moto_ses import MotoSes

    server = MotoSes()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def moto_ses(moto_server: MotoSes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MotoSes:
    """moto's SES, emptied, with the AWS chain of this test pointed at it (127.0.0.1 only)."""
    from tests.support.moto_ses import use_moto_ses

    moto_server.reset()
    use_moto_ses(monkeypatch, tmp_path, moto_server.endpoint_url)
    return moto_server


@pytest.fixture
def moto_s3(moto_server: MotoSes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MotoS3:
    """An empty bucket on moto's S3, with the AWS chain of this test pointed at it."""
    from tests.support.moto_s3 import use_moto_s3

    moto_server.reset()
    return use_moto_s3(monkeypatch, tmp_path, moto_server.endpoint_url)


def make_settings(database_url: str, tmp_path: Path, port: int, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "storage_url": f"file://{tmp_path / 'blobs'}",
        "transport_url": f"capture://{tmp_path / 'outbox'}",
        "base_url": f"http://127.0.0.1:{port}",
        "secret_key": "test-secret-key",
        "poll_interval_seconds": 0.05,
        "retry_base_seconds": 0.2,
        "retry_cap_seconds": 1.0,
        # Test receivers listen on 127.0.0.1; tests of the refusal turn this off again.
        "webhook_allow_private_addresses": True,
        # Tests of other things send as fast as they can; tests of the limit set one.
        "api_rate_limit": "0",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def server_port() -> int:
    return free_port()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, server_port: int) -> Settings:
    return make_settings(database_url, tmp_path, server_port)


@pytest.fixture
def runtime(settings: Settings, tmp_path: Path) -> Iterator[Runtime]:
    rt = build_runtime(settings, var_dir=tmp_path / "var")
    try:
        yield rt
        assert_counts_match_rows(rt)
    finally:
        rt.close()


@pytest.fixture
def live_server(runtime: Runtime, server_port: int) -> Iterator[LiveServer]:
    """The real app with its in-process worker, on 127.0.0.1 and a free port."""
    server = LiveServer(runtime, server_port)
    server.start()
    try:
        yield server
    finally:
        server.stop()
