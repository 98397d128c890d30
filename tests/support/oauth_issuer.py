"""A stand-in OAuth 2.0 issuer on 127.0.0.1: keys made here (RSA and EC), its OpenID
configuration and JWKS served over real HTTP, and tokens signed with those keys, or forged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "https://postroom.test/api"
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def new_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


class OAuthIssuer:
    """Publishes the public half of ``keys`` (by kid) at /jwks.json; counts the fetches.
    ``stop()`` takes it off the network for good, as an issuer that went down."""

    def __init__(self, max_age_seconds: int = 300) -> None:
        self.keys: dict[str, PrivateKey] = {"rsa-1": new_rsa_key(), "ec-1": new_ec_key()}
        self.max_age_seconds = max_age_seconds
        self.jwks_padding_bytes = 0  # set to serve a JWKS made that much larger
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner._lock:
                    if self.path == "/.well-known/openid-configuration":
                        owner.discovery_fetches += 1
                        body = {"issuer": owner.url, "jwks_uri": owner.jwks_url}
                    elif self.path == "/jwks.json":
                        owner.jwks_fetches += 1
                        body = owner.jwks()
                        if owner.jwks_padding_bytes:
                            body["padding"] = "x" * owner.jwks_padding_bytes
                    else:
                        self.send_error(404)
                        return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", f"public, max-age={owner.max_age_seconds}")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.jwks_url = f"{self.url}/jwks.json"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> OAuthIssuer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(kid, key) for kid, key in self.keys.items()]}

    def settings(self, **overrides: object) -> dict[str, object]:
        """Postroom settings that trust this issuer (its keys found by discovery)."""
        return {"oauth_issuer": self.url, "oauth_audience": AUDIENCE, **overrides}

    def token(
        self,
        tenant: str | None,
        scope: str | list[str] | None = "campaigns:read",
        *,
        kid: str = "rsa-1",
        key: PrivateKey | None = None,
        lifetime_seconds: float = 300,
        scope_claim: str = "scope",
        **claims: Any,
    ) -> str:
        """A token signed with the key ``kid`` names (or ``key``, under that kid); ``claims``
        replace or add to the usual ones, and a claim given as None is left out."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "svc-reporting",
            "iat": now,
            "exp": now + lifetime_seconds,
            "postroom_tenant": tenant,
            scope_claim: scope,
            **claims,
        }
        body = {name: value for name, value in body.items() if value is not None}
        signer = key or self.keys[kid]
        alg = "RS256" if isinstance(signer, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(body, signer, algorithm=alg, headers={"kid": kid})


def public_jwk(kid: str, key: PrivateKey) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        alg = "RS256"
    else:
        jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        alg = "ES256"
    assert isinstance(jwk, dict)
    return {**jwk, "kid": kid, "use": "sig", "alg": alg}


def public_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def forged(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """A token made by hand, as an attacker would: HS256 with ``secret`` as the HMAC key, or
    no signature at all when ``secret`` is None (``alg: none``)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if secret is None:
        return f"{signing_input}."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
