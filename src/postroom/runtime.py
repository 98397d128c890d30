"""The composition root: builds settings, database, blob store and clock once per process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from postroom.blobs import BlobStore, open_blob_store
from postroom.blobs.s3 import S3Endpoint
from postroom.clock import Clock, SystemClock
from postroom.config import Settings, load_settings, resolve_secret_key, resolve_storage_keys
from postroom.db.engine import Database
from postroom.db.wakeups import Wakeups
from postroom.oauth import TokenVerifier, open_token_verifier


@dataclass
class Runtime:
    """Everything a request handler or a worker step needs; passed down, never global."""

    settings: Settings
    db: Database
    blobs: BlobStore
    clock: Clock
    secret_key: bytes
    wakeups: Wakeups = field(default_factory=Wakeups)
    #: Fetches an https URL on an Amazon SNS host (signing certificates, subscription
    #: confirmations); None: the real one, over the network. Tests serve their own.
    sns_fetch: Callable[[str], bytes] | None = None
    #: Checks OAuth bearer tokens (JWTs); None: OAuth is off and only API keys are taken.
    oauth: TokenVerifier | None = None

    def close(self) -> None:
        self.db.dispose()


def build_runtime(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    var_dir: Path = Path("var"),
) -> Runtime:
    """Raise ConfigError (one line naming the variable) for anything misconfigured."""
    settings = settings or load_settings()
    secret_key = resolve_secret_key(settings, var_dir)
    db = Database(settings.database_url)
    # Only the local store encrypts what it writes (S3 encrypts on its side): no storage key
    # is generated into var/ for an install that never uses one.
    is_local = urlsplit(settings.storage_url).scheme == "file"
    blobs = open_blob_store(
        settings.storage_url,
        signing_key=secret_key,
        base_url=settings.base_url,
        keyring=resolve_storage_keys(settings, var_dir) if is_local else None,
        s3_endpoint=S3Endpoint(
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            path_style=settings.s3_path_style,
        ),
    )
    return Runtime(
        settings=settings,
        db=db,
        blobs=blobs,
        clock=clock or SystemClock(),
        secret_key=secret_key,
        oauth=open_token_verifier(settings),
    )
