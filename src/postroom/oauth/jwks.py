"""The issuer's signing keys (its JWKS), fetched over HTTP and kept by key id (``kid``).

Keys are kept for the ``Cache-Control: max-age`` of the answer, within bounds. A token naming
a key id we lack makes us fetch again (the issuer may have rotated its keys), but never sooner
than ``refetch_seconds`` after the last fetch: made-up key ids must not make us hammer the
issuer. When the issuer cannot be reached, the keys we have go on being used. Thread-safe:
the API's endpoints run in a thread pool; one thread fetches while the others wait for it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from postroom.config import is_trusted_oauth_url
from postroom.errors import PostroomError, Unauthorized

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 3600.0
MIN_TTL_SECONDS = 60.0
MAX_TTL_SECONDS = 24 * 3600.0
FETCH_TIMEOUT_SECONDS = 5.0
#: An OpenID configuration or a JWKS larger than this is refused unread: a real one is a few
#: kilobytes, and the issuer's answer is read into memory on an API request's thread.
MAX_DOCUMENT_BYTES = 256 * 1024

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d{1,10})\s*(?:,|$)", re.IGNORECASE)

#: The algorithms each kind of public key can verify; a token's ``alg`` must be one of its
#: key's, so no key is ever read as something else (an RSA key as an HMAC secret, say).
_RSA = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_KEY_ALGORITHMS: dict[tuple[str, str | None], frozenset[str]] = {
    ("RSA", None): _RSA,
    ("EC", "P-256"): frozenset({"ES256"}),
    ("EC", "P-384"): frozenset({"ES384"}),
    ("EC", "P-521"): frozenset({"ES512"}),
    ("OKP", "Ed25519"): frozenset({"EdDSA"}),
    ("OKP", "Ed448"): frozenset({"EdDSA"}),
}


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One public key of the issuer and the algorithms a token signed with it may name."""

    key: Any  # a cryptography public key
    algorithms: frozenset[str]


Fetch = Callable[[str], httpx.Response]


def fetch_over_http(url: str) -> httpx.Response:
    """GET ``url``, reading at most MAX_DOCUMENT_BYTES of its body (ValueError past that)."""
    headers = {"Accept": "application/json"}
    with httpx.stream("GET", url, timeout=FETCH_TIMEOUT_SECONDS, headers=headers) as response:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise ValueError(f"the answer is larger than {MAX_DOCUMENT_BYTES} bytes")
        kept = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-encoding", "content-length", "transfer-encoding")
        }
        return httpx.Response(
            response.status_code, headers=kept, content=bytes(body), request=response.request
        )


class JwksCache:
    """The issuer's keys by ``kid``. ``jwks_url`` None: found in the issuer's OpenID
    configuration (``<issuer>/.well-known/openid-configuration``, its ``jwks_uri``)."""

    def __init__(
        self,
        *,
        issuer: str,
        jwks_url: str | None,
        algorithms: Collection[str],
        refetch_seconds: float,
        fetch: Fetch = fetch_over_http,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuer = issuer
        self._jwks_url = jwks_url
        self._algorithms = frozenset(algorithms)
        self._refetch_seconds = refetch_seconds
        self._fetch = fetch
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._keys: dict[str, SigningKey] = {}
        self._has_fetched = False
        self._expires_at = 0.0
        self._last_attempt: float | None = None
        self.fetch_count = 0  # fetches of the JWKS itself, for tests and the curious

    def key_for(self, kid: str) -> SigningKey:
        """The key named ``kid``; Unauthorized (invalid_token) when the issuer has none by that
        name, 503 jwks_unavailable when its keys have never been fetched."""
        with self._lock:
            now = self._monotonic()
            known = self._keys.get(kid)
            is_fresh = now < self._expires_at
            if (known is None or not is_fresh) and self._may_fetch(now):
                self._refresh(now)
                known = self._keys.get(kid)
            if known is not None:
                return known
            if not self._has_fetched:
                raise PostroomError(
                    "The OAuth issuer's signing keys could not be fetched; try again shortly.",
                    code="jwks_unavailable",
                    status=503,
                )
        raise Unauthorized(
            "The bearer token is signed with a key (kid) the issuer does not publish.",
            code="invalid_token",
        )

    def _may_fetch(self, now: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self._refetch_seconds

    def _refresh(self, now: float) -> None:
        self._last_attempt = now
        url = self._jwks_url
        try:
            if url is None:
                url = self._jwks_url = self._discover_jwks_url()
            self.fetch_count += 1
            response = self._fetch(url)
            response.raise_for_status()
            keys = signing_keys(response.json(), self._algorithms)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("could not fetch the OAuth signing keys (%s): %s", url, exc)
            return
        self._keys = keys
        self._has_fetched = True
        self._expires_at = now + ttl_seconds(response.headers.get("Cache-Control"))

    def _discover_jwks_url(self) -> str:
        where = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        response = self._fetch(where)
        response.raise_for_status()
        document = response.json()
        jwks_uri = document.get("jwks_uri") if isinstance(document, dict) else None
        if not isinstance(jwks_uri, str) or not is_trusted_oauth_url(jwks_uri):
            raise ValueError(f"{where} names no usable jwks_uri: {jwks_uri!r}")
        return jwks_uri


def signing_keys(document: object, allowed: Collection[str]) -> dict[str, SigningKey]:
    """The usable keys of a JWKS document by kid: public signature keys of a kind that one of
    the ``allowed`` algorithms verifies. Others (encryption keys, symmetric ``oct`` keys,
    keys without a kid, ones PyJWT cannot read) are left out. ValueError when the document is
    not a JWKS at all."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("the answer is not a JWKS (no 'keys' list)")
    keys: dict[str, SigningKey] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig":
            continue
        kty = str(entry.get("kty"))
        kind = (kty, None if kty == "RSA" else str(entry.get("crv")))
        algorithms = _KEY_ALGORITHMS.get(kind, frozenset()) & frozenset(allowed)
        if "alg" in entry:
            algorithms &= {entry["alg"]}
        if not algorithms:
            continue
        try:
            key = jwt.PyJWK(entry, algorithm=min(algorithms)).key
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue
        public = getattr(key, "public_key", None)  # a JWKS that leaks a private key
        keys[kid] = SigningKey(public() if callable(public) else key, algorithms)
    return keys


def ttl_seconds(cache_control: str | None) -> float:
    """How long to keep a JWKS: its max-age within [MIN_TTL_SECONDS, MAX_TTL_SECONDS], else
    DEFAULT_TTL_SECONDS."""
    found = _MAX_AGE.search(cache_control or "")
    if found is None:
        return DEFAULT_TTL_SECONDS
    return min(max(float(found.group(1)), MIN_TTL_SECONDS), MAX_TTL_SECONDS)
