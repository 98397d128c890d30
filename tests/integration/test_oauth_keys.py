"""The JWKS cache against a real issuer on 127.0.0.1, on a clock the test moves: keys are kept
for the answer's max-age, a made-up key id fetches at most once per interval, threads share
one fetch, and the keys we have outlive the issuer; before any fetch worked, 503."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from postroom.errors import PostroomError, Unauthorized
from postroom.oauth.jwks import MAX_DOCUMENT_BYTES, JwksCache
from tests.support.live_server import free_port
from tests.support.oauth_issuer import OAuthIssuer


class Ticks:
    """A monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> Iterator[OAuthIssuer]:
    running = OAuthIssuer(max_age_seconds=120).start()
    try:
        yield running
    finally:
        running.stop()


def cache_of(issuer_url: str, ticks: Ticks, jwks_url: str | None = None) -> JwksCache:
    return JwksCache(
        issuer=issuer_url,
        jwks_url=jwks_url,
        algorithms=("RS256", "ES256"),
        refetch_seconds=30,
        monotonic=ticks,
    )


def test_keys_are_kept_for_their_max_age(issuer: OAuthIssuer) -> None:
    ticks = Ticks()
    keys = cache_of(issuer.url, ticks)
    assert keys.key_for("rsa-1").algorithms == {"RS256"}
    assert keys.key_for("ec-1").algorithms == {"ES256"}
    ticks.now += 119
    keys.key_for("rsa-1")
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 1)
    ticks.now += 2
    keys.key_for("rsa-1")
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 2)


def test_made_up_key_ids_fetch_at_most_once_per_interval(issuer: OAuthIssuer) -> None:
    ticks = Ticks()
    keys = cache_of(issuer.url, ticks, jwks_url=issuer.jwks_url)
    keys.key_for("rsa-1")
    for round_number in range(3):
        for n in range(200):
            with pytest.raises(Unauthorized) as refused:
                keys.key_for(f"made-up-{round_number}-{n}")
            assert refused.value.code == "invalid_token"
        ticks.now += 30
    assert issuer.jwks_fetches == 3  # the first, then one per interval that saw made-up kids
    assert issuer.discovery_fetches == 0


def test_threads_share_one_fetch(issuer: OAuthIssuer) -> None:
    keys = cache_of(issuer.url, Ticks(), jwks_url=issuer.jwks_url)
    start = threading.Barrier(16)
    found: list[object] = []

    def look_up() -> None:
        start.wait()
        found.append(keys.key_for("ec-1"))

    threads = [threading.Thread(target=look_up) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(found) == 16 and issuer.jwks_fetches == 1


def test_stale_keys_serve_while_the_issuer_is_down(issuer: OAuthIssuer) -> None:
    ticks = Ticks()
    keys = cache_of(issuer.url, ticks, jwks_url=issuer.jwks_url)
    first = keys.key_for("rsa-1")
    issuer.stop()
    ticks.now += 3600  # long past the max-age
    assert keys.key_for("rsa-1") is first
    assert keys.key_for("ec-1") is not None
    with pytest.raises(Unauthorized):
        keys.key_for("rsa-2")


def test_no_keys_yet_is_503_and_retried_once_per_interval() -> None:
    ticks = Ticks()
    keys = cache_of(f"http://127.0.0.1:{free_port()}", ticks)  # nothing listens there
    for _ in range(2):
        with pytest.raises(PostroomError) as unavailable:
            keys.key_for("rsa-1")
        assert (unavailable.value.status, unavailable.value.code) == (503, "jwks_unavailable")
    assert keys.fetch_count == 0  # discovery failed, so the JWKS itself was never asked for


def test_an_oversized_jwks_is_refused_unread(issuer: OAuthIssuer) -> None:
    ticks = Ticks()
    issuer.jwks_padding_bytes = MAX_DOCUMENT_BYTES
    keys = cache_of(issuer.url, ticks)
    with pytest.raises(PostroomError) as refused:
        keys.key_for("rsa-1")
    assert refused.value.code == "jwks_unavailable" and refused.value.status == 503
    issuer.jwks_padding_bytes = MAX_DOCUMENT_BYTES - 20_000  # with the keys, just under
    ticks.now += 30
    assert keys.key_for("rsa-1").algorithms == {"RS256"}
