"""HMAC-SHA256 signatures for presigned upload URLs, unsubscribe links and VERP tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac


def mac(key: bytes, *parts: str) -> bytes:
    """The HMAC-SHA256 of ``parts``, joined unambiguously (length-prefixed)."""
    message = b"".join(len(p.encode()).to_bytes(4, "big") + p.encode() for p in parts)
    return hmac.new(key, message, hashlib.sha256).digest()


def sign(key: bytes, *parts: str) -> str:
    """A URL-safe signature over ``parts`` (see :func:`mac`)."""
    return base64.urlsafe_b64encode(mac(key, *parts)).rstrip(b"=").decode()


def verify(key: bytes, signature: str, *parts: str) -> bool:
    """Constant-time check of a signature made by :func:`sign`."""
    return hmac.compare_digest(sign(key, *parts), signature)
