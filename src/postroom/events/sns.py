"""Trusting Amazon SNS: a message POSTed to the SES hook is believed only when its signature
verifies against a certificate that SNS itself serves (an https URL on an
``sns.<region>.amazonaws.com`` host), over the fields SNS signs for its message type."""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# sns.us-east-1.amazonaws.com, sns.cn-north-1.amazonaws.com.cn: nothing before or after.
_SNS_HOST = re.compile(r"sns\.[a-z]{2}(?:-[a-z]+)+-\d\.amazonaws\.com(?:\.cn)?")

#: The fields SNS signs, in the order it signs them ("Key\nValue\n" each; Subject only when
#: the notification has one).
_CONFIRMATION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _CONFIRMATION_FIELDS,
    "UnsubscribeConfirmation": _CONFIRMATION_FIELDS,
}
_OPTIONAL = frozenset({"Subject"})
_DIGESTS: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "1": hashes.SHA1,
    "2": hashes.SHA256,
}


class SnsRejected(Exception):
    """A message that must not be trusted; str(exc) is a short reason (logged, never sent
    back)."""


def is_sns_url(url: str) -> bool:
    """An https URL on an SNS host, with no credentials and the default port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and parts.username is None
        and parts.password is None
        and port in (None, 443)
        and parts.hostname is not None
        and _SNS_HOST.fullmatch(parts.hostname) is not None
    )


def confirmation_url_is_safe(url: str) -> bool:
    """A SubscribeURL may be fetched only when it leads to SNS itself."""
    return is_sns_url(url)


def fetch_from_sns(url: str, *, timeout_seconds: float = 5.0, max_bytes: int = 64 * 1024) -> bytes:
    """GET an SNS URL (a signing certificate, a subscription confirmation) with certificate
    verification, no redirects and a size limit."""
    if not is_sns_url(url):
        raise SnsRejected(f"not an SNS URL: {url!r}")
    try:
        with httpx.stream("GET", url, timeout=timeout_seconds, follow_redirects=False) as reply:
            if reply.status_code != 200:
                raise SnsRejected(f"{url} answered {reply.status_code}")
            body = b""
            for chunk in reply.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise SnsRejected(f"{url} sent more than {max_bytes} bytes")
            return body
    except httpx.HTTPError as exc:
        raise SnsRejected(f"cannot fetch {url}: {exc}") from None


class SnsVerifier:
    """Checks SNS signatures; certificates are fetched once per URL and kept (bounded)."""

    def __init__(self, fetch_certificate: Callable[[str], bytes], *, cache_size: int = 32) -> None:
        self._fetch = fetch_certificate
        self._cache_size = cache_size
        self._certificates: OrderedDict[str, x509.Certificate] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, message: dict[str, Any]) -> None:
        """Raise SnsRejected unless ``message`` is signed by SNS."""
        kind = message.get("Type")
        if kind not in SIGNED_FIELDS:
            raise SnsRejected(f"unknown message type {kind!r}")
        digest = _DIGESTS.get(str(message.get("SignatureVersion")))
        if digest is None:
            raise SnsRejected(f"unknown SignatureVersion {message.get('SignatureVersion')!r}")
        url = message.get("SigningCertURL")
        if not isinstance(url, str) or not is_sns_url(url):
            raise SnsRejected(f"SigningCertURL is not an SNS https URL: {url!r}")
        signature = _signature(message.get("Signature"))
        public_key = self._certificate(url).public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise SnsRejected("the signing certificate's key is not RSA")
        try:
            public_key.verify(signature, string_to_sign(message), padding.PKCS1v15(), digest())
        except InvalidSignature:
            raise SnsRejected("the signature does not match the message") from None

    def _certificate(self, url: str) -> x509.Certificate:
        with self._lock:
            cached = self._certificates.get(url)
            if cached is not None:
                self._certificates.move_to_end(url)
        if cached is None:
            cached = _load_certificate(self._fetch(url))
            with self._lock:
                self._certificates[url] = cached
                while len(self._certificates) > self._cache_size:
                    self._certificates.popitem(last=False)
        now = datetime.now(UTC)
        if not cached.not_valid_before_utc <= now <= cached.not_valid_after_utc:
            raise SnsRejected("the signing certificate is not valid now")
        return cached


def string_to_sign(message: dict[str, Any]) -> bytes:
    """What SNS signs: the message type's fields, in order, as "Key\\nValue\\n"."""
    lines = []
    for key in SIGNED_FIELDS[message["Type"]]:
        value = message.get(key)
        if value is None and key in _OPTIONAL:
            continue
        if not isinstance(value, str):
            raise SnsRejected(f"{key} is missing or not a string")
        lines.append(f"{key}\n{value}\n")
    return "".join(lines).encode()


def _signature(value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise SnsRejected("the message is not signed")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SnsRejected("the signature is not base64") from None


def _load_certificate(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise SnsRejected("the signing certificate is not a PEM X.509 certificate") from None
