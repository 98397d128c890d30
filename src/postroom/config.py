"""Every POSTROOM_* setting, its embedded default, and one-line errors for bad values."""

from __future__ import annotations

import os
import re
import secrets
from email.utils import parseaddr
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from postroom.errors import ConfigError
from postroom.rates import parse_domain_rates, parse_rate
from postroom.storage_keys import Keyring, StorageKey, new_key_entry, parse_keyring

DATABASE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")
STORAGE_SCHEMES = ("file", "s3")
TRANSPORT_SCHEMES = ("smtp", "ses", "capture")
#: What a `postroom worker` can be limited to (POSTROOM_WORKER_ROLES, --roles): processing
#: recipient files; sending; the schedule (scheduled campaigns falling due, dead workers'
#: leases taken back, finished campaigns completed); webhook deliveries; retention.
WORKER_ROLES = ("files", "send", "schedule", "webhooks", "retention")


class Settings(BaseSettings):
    """Configuration read from the environment and a ``.env`` file in the working directory."""

    model_config = SettingsConfigDict(
        env_prefix="POSTROOM_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = "sqlite:///var/postroom.db"
    storage_url: str = "file://var/blobs"
    transport_url: str = "capture://var/outbox"
    base_url: str = "http://127.0.0.1:8025"
    secret_key: str = ""
    # Blobs on local disk are encrypted (blobs/encryption.py) under the first of these
    # "id:base64" keys; the others still read older blobs. Empty: one generated into var/.
    storage_encryption_keys: str = Field(default="", repr=False)
    default_from: str = "Postroom <postroom@localhost>"
    # With s3:// storage: another S3-compatible endpoint (MinIO, Ceph, R2…; empty: AWS), the
    # region (empty: the standard AWS chain's) and path-style addressing (http://host/bucket).
    s3_endpoint_url: str = ""
    s3_region: str = ""
    s3_path_style: bool = False

    upload_url_ttl_seconds: int = Field(default=15 * 60, gt=0)
    # Request bodies. Above request_max_bytes a body answers 413 before it is read (uploads
    # carry their own signed limit instead). Any body, uploads included, is cut off (408, the
    # connection closed) when a span of request_body_timeout_seconds brings fewer than
    # request_body_min_bytes_per_second * that span: a slow-loris client holds a slot.
    request_max_bytes: int = Field(default=1024 * 1024, gt=0)
    request_body_timeout_seconds: float = Field(default=30.0, gt=0)
    request_body_min_bytes_per_second: int = Field(default=1024, ge=0)
    template_max_bytes: int = Field(default=512 * 1024, gt=0)
    # Each message's render (subject, HTML and text together): its size, its time, and the
    # loop steps it may take; past one, the message fails with render_limit.
    render_max_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    render_timeout_seconds: float = Field(default=1.0, gt=0)
    render_max_iterations: int = Field(default=100_000, gt=0)
    file_max_bytes: int = Field(default=2 * 1024**3, gt=0)
    csv_max_columns: int = Field(default=1000, gt=0)
    csv_max_field_bytes: int = Field(default=64 * 1024, gt=0)
    ingest_batch_rows: int = Field(default=5000, gt=0)
    tracking_bot_window_seconds: float = Field(default=10, ge=0)

    send_batch_size: int = Field(default=200, gt=0)
    send_concurrency: int = Field(default=2, gt=0, le=16)
    smtp_pool_size: int = Field(default=4, gt=0)
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    lease_seconds: int = Field(default=300, gt=0)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    retry_base_seconds: float = Field(default=300.0, gt=0)
    retry_cap_seconds: float = Field(default=3600.0, gt=0)
    # A message that keeps failing transiently fails for good this long after its first
    # attempt (RFC 5321 asks senders to keep trying for days, not minutes).
    retry_budget_seconds: float = Field(default=3 * 24 * 3600.0, gt=0)
    # The circuit breaker: this many transport-level failures in a row open it; it lets one
    # probe through after the cool-down, which doubles with every re-open up to the cap.
    breaker_failure_threshold: int = Field(default=5, gt=0)
    breaker_cooldown_seconds: float = Field(default=30.0, gt=0)
    breaker_max_cooldown_seconds: float = Field(default=600.0, gt=0)
    # Rate limits shared by every worker (e.g. "14/s", "600/m"; "0" is no limit): all mail
    # through the transport, each tenant's mail (a tenant may have its own, see `postroom
    # tenant limits`), and per recipient domain ("gmail.com=20/s,yahoo.com=10/s").
    # Amazon SNS notifications (POST /hooks/ses) are trusted only with a valid signature;
    # turning this off is for local development only and is logged loudly.
    sns_verify_signatures: bool = True
    rate_limit: str = "0"
    tenant_rate_limit: str = "0"
    domain_rate_limits: str = ""
    idempotency_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    # Requests per API key, shared by every API process: a steady rate ("20/s", "600/m";
    # "0" is no limit) and how many may come at once after a quiet spell. A tenant may have
    # its own (`postroom tenant quotas`).
    api_rate_limit: str = "20/s"
    api_rate_burst: int = Field(default=40, gt=0)
    # Quotas every tenant is held to unless it has its own (0: none): the largest recipient
    # file (at most file_max_bytes), the rows of one campaign's file, and the messages its
    # campaigns may take on per UTC day.
    quota_file_bytes: int = Field(default=0, ge=0)
    quota_rows_per_campaign: int = Field(default=0, ge=0)
    quota_messages_per_day: int = Field(default=0, ge=0)
    # How much `postroom worker` yields the CPU to other processes on its host (os.nice):
    # bulk sending waits a moment, while API requests on the same machine stay quick.
    worker_niceness: int = Field(default=10, ge=0, le=19)
    # 0: `postroom worker` serves no metrics; the API always serves them on /metrics.
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    # What `postroom worker` does (--roles overrides it): a comma-separated part of
    # WORKER_ROLES. Every role must be run by some worker of the fleet.
    worker_roles: str = ",".join(WORKER_ROLES)

    # Bounces in SMTP mode: each message's envelope sender becomes bounces+<token>@domain
    # (VERP) and its List-Unsubscribe gains a mailto: form; empty: off. Not used with ses://.
    bounce_address: str = ""
    bounce_max_message_bytes: int = Field(default=10 * 1024 * 1024, gt=0)

    # Webhooks: each delivery is retried with exponential backoff (base, doubled per attempt
    # up to the cap, with jitter) until a 2xx or the end of the window; an endpoint whose
    # every delivery failed for the disable time is disabled. Deliveries in flight per
    # worker, per endpoint, and the time one may take.
    webhook_retry_base_seconds: float = Field(default=30.0, gt=0)
    webhook_retry_cap_seconds: float = Field(default=3600.0, gt=0)
    webhook_retry_window_hours: float = Field(default=24.0, gt=0)
    webhook_disable_after_hours: float = Field(default=72.0, gt=0)
    webhook_concurrency: int = Field(default=64, gt=0, le=256)
    webhook_endpoint_concurrency: int = Field(default=16, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Off: webhooks go to public addresses only (no loopback, private, link-local or
    # metadata addresses), so a tenant cannot reach the network behind Postroom through them.
    webhook_allow_private_addresses: bool = False

    # Retention, applied by every worker about hourly (and by `postroom retention run`):
    # recipient CSVs are deleted this many days after a campaign last finished reading them,
    # or after their upload if no campaign used them (0: kept); the personalisation fields
    # of messages are emptied this many days after the message was done (0: kept), while
    # counts, statuses and events stay; webhook deliveries finished (delivered, or failed for
    # good) this many days ago are deleted (0: kept).
    source_retention_days: float = Field(default=7, ge=0)
    personalisation_retention_days: float = Field(default=0, ge=0)
    webhook_delivery_retention_days: float = Field(default=30, ge=0)

    log_format: Literal["text", "json"] = "text"

    # OAuth 2.0 bearer tokens (JWTs) beside API keys; an empty issuer turns them off. The
    # signing keys come from the JWKS URL, else from the issuer's OpenID configuration.
    oauth_issuer: str = ""
    oauth_audience: str = ""
    oauth_jwks_url: str = ""
    oauth_tenant_claim: str = "postroom_tenant"
    oauth_scope_claim: str = "scope"
    oauth_algorithms: str = "RS256,ES256,PS256,EdDSA"
    oauth_leeway_seconds: float = Field(default=30.0, ge=0, le=300)
    # The soonest the JWKS is fetched again for a key id it lacks (a rotation at the issuer,
    # or a made-up kid: a flood of those must not become a flood of fetches).
    oauth_jwks_refetch_seconds: float = Field(default=30.0, gt=0)


def load_settings(**overrides: object) -> Settings:
    """Read and check settings; raise ConfigError naming the variable for anything bad."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "POSTROOM_" + str(first["loc"][0]).upper() if first["loc"] else "POSTROOM_*"
        raise ConfigError(name, str(first["msg"])) from None
    _check_scheme("POSTROOM_DATABASE_URL", settings.database_url, DATABASE_SCHEMES)
    _check_scheme("POSTROOM_STORAGE_URL", settings.storage_url, STORAGE_SCHEMES)
    _check_scheme("POSTROOM_TRANSPORT_URL", settings.transport_url, TRANSPORT_SCHEMES)
    if settings.s3_endpoint_url:
        _check_scheme("POSTROOM_S3_ENDPOINT_URL", settings.s3_endpoint_url, ("http", "https"))
    if settings.storage_encryption_keys.strip():
        try:
            parse_keyring(settings.storage_encryption_keys)
        except ValueError as exc:
            raise ConfigError("POSTROOM_STORAGE_ENCRYPTION_KEYS", str(exc)) from None
    for name in ("rate_limit", "tenant_rate_limit", "api_rate_limit"):
        try:
            parse_rate(getattr(settings, name))
        except ValueError as exc:
            raise ConfigError(f"POSTROOM_{name.upper()}", str(exc)) from None
    try:
        parse_domain_rates(settings.domain_rate_limits)
    except ValueError as exc:
        raise ConfigError("POSTROOM_DOMAIN_RATE_LIMITS", str(exc)) from None
    try:
        parse_worker_roles(settings.worker_roles)
    except ValueError as exc:
        raise ConfigError("POSTROOM_WORKER_ROLES", str(exc)) from None
    if settings.bounce_address:
        _check_bounce_address(settings.bounce_address)
    # Both reach mail headers (the From line; List-Unsubscribe URLs): no line breaks there.
    for name in ("base_url", "default_from"):
        if not getattr(settings, name).isprintable():
            raise ConfigError(f"POSTROOM_{name.upper()}", "must not contain control characters")
    _check_default_from(settings.default_from)
    base = urlsplit(settings.base_url)
    if " " in settings.base_url or base.scheme not in ("http", "https") or not base.netloc:
        raise ConfigError("POSTROOM_BASE_URL", f"must be an http(s) URL, got {settings.base_url!r}")
    if settings.oauth_issuer:
        _check_oauth(settings)
    return settings


def parse_worker_roles(text: str) -> frozenset[str]:
    """``files,send`` as a set of roles; ValueError naming the valid ones for anything else."""
    roles = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in roles if name not in WORKER_ROLES]
    if unknown or not roles:
        what = f"unknown worker role {unknown[0]!r}" if unknown else "no worker role given"
        raise ValueError(f"{what}; the roles are {', '.join(WORKER_ROLES)}")
    return frozenset(roles)


#: Signature algorithms a bearer token may use: public-key ones only. ``none`` and the HMAC
#: family (HS*) are never allowed: a public key must not be usable as a shared secret.
OAUTH_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def oauth_algorithms(settings: Settings) -> list[str]:
    """POSTROOM_OAUTH_ALGORITHMS as a list, in the order given."""
    return [name.strip() for name in settings.oauth_algorithms.split(",") if name.strip()]


def _check_oauth(settings: Settings) -> None:
    _check_oauth_url("POSTROOM_OAUTH_ISSUER", settings.oauth_issuer)
    if settings.oauth_jwks_url:
        _check_oauth_url("POSTROOM_OAUTH_JWKS_URL", settings.oauth_jwks_url)
    if not settings.oauth_audience.strip():
        raise ConfigError(
            "POSTROOM_OAUTH_AUDIENCE", "must be set when POSTROOM_OAUTH_ISSUER is (the aud claim)"
        )
    for name in ("oauth_tenant_claim", "oauth_scope_claim"):
        if not getattr(settings, name).strip():
            raise ConfigError(f"POSTROOM_{name.upper()}", "must name a claim")
    algorithms = oauth_algorithms(settings)
    unknown = [name for name in algorithms if name not in OAUTH_ALGORITHMS]
    if unknown or not algorithms:
        problem = f"{unknown[0]!r} is not allowed" if unknown else "give at least one"
        raise ConfigError(
            "POSTROOM_OAUTH_ALGORITHMS",
            f"{problem}; choose from {','.join(OAUTH_ALGORITHMS)} (never none or HS*)",
        )


def is_trusted_oauth_url(url: str) -> bool:
    """Whether keys may be fetched from ``url``: https, or plain http to this machine only
    (development and tests)."""
    parts = urlsplit(url)
    is_loopback = parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
    return " " not in url and bool(parts.hostname) and (parts.scheme == "https" or is_loopback)


def _check_oauth_url(variable: str, url: str) -> None:
    if not is_trusted_oauth_url(url):
        raise ConfigError(
            variable,
            f"must be an https:// URL (http:// only to 127.0.0.1 or localhost), got {url!r}",
        )


#: The longest local part a bounce address may have: "+u-", an 18-digit message id, "-" and
#: a 16-character MAC (events/verp.py) must still fit in the 64 that RFC 5321 allows.
MAX_BOUNCE_LOCAL = 64 - 3 - 18 - 1 - 16

#: A plain addr-spec: dot-atom local part (no "+", which starts the VERP token) and domain.
_BOUNCE_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+"
)


#: An addr-spec as the composer will take it: no spaces, quotes, brackets or second "@".
_PLAIN_ADDRESS = re.compile(r"[^\s\"(),:;<>@\[\\\]]+@[^\s\"(),:;<>@\[\\\]]+")


def _check_default_from(value: str) -> None:
    # parseaddr never fails: on something it cannot read it returns a fragment, which would
    # become the From of every campaign without its own (and fail each at send time).
    address = parseaddr(value)[1]
    as_written = value.strip() == address or value.rstrip().endswith(f"<{address}>")
    if not (_PLAIN_ADDRESS.fullmatch(address) and as_written):
        raise ConfigError(
            "POSTROOM_DEFAULT_FROM",
            f"must be an address, optionally with a name: Name <address@example.com>; "
            f"read {address!r} from {value!r}",
        )


def _check_bounce_address(address: str) -> None:
    if not _BOUNCE_ADDRESS.fullmatch(address):
        raise ConfigError(
            "POSTROOM_BOUNCE_ADDRESS",
            f"must be a plain address like bounces@example.com (no '+', no name), got {address!r}",
        )
    local = address.partition("@")[0]
    if len(local) > MAX_BOUNCE_LOCAL:
        raise ConfigError(
            "POSTROOM_BOUNCE_ADDRESS",
            f"the part before @ may have at most {MAX_BOUNCE_LOCAL} characters "
            "(the VERP token must fit in 64)",
        )


def _check_scheme(variable: str, url: str, allowed: tuple[str, ...]) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in allowed:
        raise ConfigError(
            variable,
            f"unknown scheme {scheme or '(none)'!r} in {url!r}; expected one of "
            + ", ".join(f"{s}://" for s in allowed),
        )


def resolve_secret_key(settings: Settings, var_dir: Path) -> bytes:
    """The key that signs URLs and tokens: POSTROOM_SECRET_KEY, else one generated once into
    ``var/secret.key`` (kept, so links stay valid across restarts)."""
    if settings.secret_key:
        return settings.secret_key.encode()
    path = var_dir / "secret.key"
    if path.exists():
        return path.read_text().strip().encode()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(key + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)
    return key.encode()


GENERATED_STORAGE_KEY_ID = "generated"


def resolve_storage_keys(settings: Settings, var_dir: Path) -> Keyring:
    """The keys that encrypt blobs: POSTROOM_STORAGE_ENCRYPTION_KEYS, else one generated
    once into ``var/storage.key``. A generated key found there stays readable after explicit
    keys are set, so ``postroom storage rotate-key`` can move its blobs under them."""
    path = var_dir / "storage.key"
    generated = _read_generated_key(path)
    if settings.storage_encryption_keys.strip():
        keyring = parse_keyring(settings.storage_encryption_keys)
        return keyring.with_reading_key(generated) if generated else keyring
    if generated:
        return Keyring((generated,))
    var_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".storage.key.{secrets.token_hex(6)}")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(new_key_entry(GENERATED_STORAGE_KEY_ID) + "\n")
    # Linked, not replaced: two processes starting at once must end up with the same key,
    # or the blobs one of them wrote could never be read again.
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    generated = _read_generated_key(path)
    assert generated is not None
    return Keyring((generated,))


def _read_generated_key(path: Path) -> StorageKey | None:
    if not path.exists():
        return None
    try:
        return parse_keyring(path.read_text().strip()).current
    except ValueError as exc:
        raise ConfigError("POSTROOM_STORAGE_ENCRYPTION_KEYS", f"{path}: {exc}") from None
