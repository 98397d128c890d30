"""Amazon SNS signature checks, offline, with a throw-away key and certificate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from postroom.events.sns import (
    SnsRejected,
    SnsVerifier,
    confirmation_url_is_safe,
    fetch_from_sns,
    is_sns_url,
)
from tests.support.sns_signing import SnsSigner, fixture


@pytest.mark.parametrize(
    ("url", "trusted"),
    [
        ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem", True),
        ("https://sns.eu-west-2.amazonaws.com/x.pem", True),
        ("https://sns.cn-north-1.amazonaws.com.cn/x.pem", True),
        ("https://sns.us-gov-west-1.amazonaws.com/x.pem", True),
        ("https://sns.us-east-1.amazonaws.com:443/x.pem", True),
        ("http://sns.us-east-1.amazonaws.com/x.pem", False),
        ("https://sns.us-east-1.amazonaws.com.evil.example/x.pem", False),
        ("https://evil.example/sns.us-east-1.amazonaws.com/x.pem", False),
        ("https://sns.amazonaws.com/x.pem", False),
        ("https://user@sns.us-east-1.amazonaws.com/x.pem", False),
        ("https://sns.us-east-1.amazonaws.com:8443/x.pem", False),
        ("https://xsns.us-east-1.amazonaws.com/x.pem", False),
        ("https://sns.us-east-1.amazonaws.com:bad/x.pem", False),
        ("", False),
    ],
)
def test_only_sns_hosts_over_https_are_trusted(url: str, trusted: bool) -> None:
    assert is_sns_url(url) is trusted
    assert confirmation_url_is_safe(url) is trusted


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize(
    "name",
    [
        "sns-http-notification.json",
        "sns-http-subscription-confirmation.json",
        "sns-http-unsubscribe-confirmation.json",
    ],
)
def test_signed_messages_verify(name: str, version: str) -> None:
    signer = SnsSigner()
    message = signer.sign(fixture(name), version)
    SnsVerifier(signer.fetch).verify(message)
    if "Subject" in message:  # a notification without a subject is signed without it
        no_subject = {k: v for k, v in fixture(name).items() if k != "Subject"}
        SnsVerifier(signer.fetch).verify(signer.sign(no_subject, version))


@pytest.mark.parametrize("field", ["Message", "MessageId", "Subject", "Timestamp", "TopicArn"])
def test_every_signed_field_is_covered(field: str) -> None:
    signer = SnsSigner()
    message = signer.sign(fixture("sns-http-notification.json"))
    with pytest.raises(SnsRejected):
        SnsVerifier(signer.fetch).verify({**message, field: message[field] + "x"})


def certificate(signer: SnsSigner, *, days_from: int, days_to: int) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(signer.key.public_key())
        .serial_number(1)
        .not_valid_before(now + timedelta(days=days_from))
        .not_valid_after(now + timedelta(days=days_to))
        .sign(signer.key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )


@pytest.mark.parametrize(
    ("served", "reason"),
    [
        (lambda s: certificate(s, days_from=-10, days_to=-1), "not valid now"),
        (lambda s: certificate(s, days_from=1, days_to=10), "not valid now"),
        (lambda s: b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n", "PEM"),
        (lambda s: SnsSigner().certificate_pem, "does not match"),  # another key's certificate
    ],
)
def test_a_bad_certificate_is_refused(served: Any, reason: str) -> None:
    signer = SnsSigner()
    pem = served(signer)
    message = signer.sign(fixture("sns-http-notification.json"))
    with pytest.raises(SnsRejected, match=reason):
        SnsVerifier(lambda url: pem).verify(message)


def test_malformed_messages_are_refused_without_fetching() -> None:
    signer = SnsSigner()
    good = signer.sign(fixture("sns-http-notification.json"))
    verifier = SnsVerifier(signer.fetch)
    for bad in (
        {**good, "Type": "Other"},
        {**good, "SignatureVersion": "3"},
        {**good, "SigningCertURL": "http://sns.us-east-1.amazonaws.com/x.pem"},
        {**good, "SigningCertURL": 5},
    ):
        with pytest.raises(SnsRejected):
            verifier.verify(bad)
    assert signer.fetched == []
    for bad in (
        {k: v for k, v in good.items() if k != "Signature"},
        {**good, "Signature": "not base64!"},
        {**good, "Message": 5},
        {k: v for k, v in good.items() if k != "TopicArn"},
    ):
        with pytest.raises(SnsRejected):
            verifier.verify(bad)


def test_certificates_are_cached_within_a_bound() -> None:
    signer = SnsSigner()
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return signer.certificate_pem

    verifier = SnsVerifier(fetch, cache_size=2)
    message = signer.sign(fixture("sns-http-notification.json"))
    urls = [f"https://sns.eu-west-{n}.amazonaws.com/c.pem" for n in (1, 2, 3)]
    for url in [urls[0]] * 3 + urls + [urls[0]]:
        # The certificate URL is not among the signed fields: the same signature verifies.
        verifier.verify({**message, "SigningCertURL": url})
    assert fetched == [urls[0], urls[1], urls[2], urls[0]]  # the oldest went out


def test_the_fetcher_refuses_what_is_not_sns_without_the_network() -> None:
    for url in ("http://sns.us-east-1.amazonaws.com/x.pem", "https://evil.example/x.pem"):
        with pytest.raises(SnsRejected, match="not an SNS URL"):
            fetch_from_sns(url)
