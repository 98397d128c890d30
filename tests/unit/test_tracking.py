"""Tracking tokens, the scanner rule and the HTML rewriting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from postroom.delivery.tracking_html import add_pixel, rewrite_links
from postroom.events.tracking import (
    click_token,
    message_of_open_token,
    open_token,
    suspected_bot,
    target_of_click_token,
)
from postroom.signing import Signer, sign

KEY = b"k" * 32


def test_open_token_round_trips_and_names_its_message() -> None:
    assert message_of_open_token(KEY, open_token(KEY, 42)) == 42
    assert message_of_open_token(b"other" * 8, open_token(KEY, 42)) is None


def test_click_token_carries_the_exact_url() -> None:
    url = "https://example.com/a?b=1&c=2#frag"
    assert target_of_click_token(KEY, click_token(KEY, 7, url)) == (7, url)


@pytest.mark.parametrize("maker", ["open", "click"])
def test_every_altered_position_reads_as_none(maker: str) -> None:
    if maker == "open":
        token, read = open_token(KEY, 123), message_of_open_token
    else:
        token, read = click_token(KEY, 123, "https://e.com/x"), target_of_click_token
    for i, ch in enumerate(token):
        other = "A" if ch != "A" else "B"
        assert read(KEY, token[:i] + other + token[i + 1 :]) is None, i
        assert read(KEY, token[:i]) is None, i
    for bad in ["", ".", "..", "x.y", "1.é" * 3, "1." + "a" * 22, token + "."]:
        assert read(KEY, bad) is None


def test_a_click_token_cannot_be_moved_to_another_url() -> None:
    token = click_token(KEY, 1, "https://good.example/")
    pk, _, sig = token.split(".")
    forged = click_token(b"x" * 32, 1, "https://evil.example/").split(".")[1]
    assert target_of_click_token(KEY, f"{pk}.{forged}.{sig}") is None
    assert len(sig) >= 22  # >= 128 bits


def test_scanner_rule() -> None:
    sent = datetime(2026, 1, 1, tzinfo=UTC)
    late, soon = sent + timedelta(minutes=5), sent + timedelta(seconds=3)
    browser = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"
    assert not suspected_bot(browser, sent, soon, 10)
    for ua in ["python-requests/2.31", "curl/8.0", "Barracuda Sentinel", "Googlebot/2.1", ""]:
        assert suspected_bot(ua, sent, late, 10), ua
    proxy = "Mozilla/5.0 (Windows NT 5.1) (via ggpht.com GoogleImageProxy)"
    assert suspected_bot(proxy, sent, soon, 10)
    assert not suspected_bot(proxy, sent, late, 10)


def _click(url: str) -> str:
    return f"https://t.example/t/c/{url}"


def test_rewrites_quotes_case_and_entities_and_leaves_the_rest() -> None:
    body = (
        '<a href="https://a.example/x?p=1&amp;q=2">A</a>'
        "<a HREF='http://b.example/'>B</a>"
        "<AREA href=https://c.example/>"
        '<a href="mailto:x@y.z">m</a><a href="tel:+1">t</a><a href="#top">#</a>'
        '<a href="/relative">r</a><a href="https://u.example/unsub">u</a>'
        '<a data-postroom-notrack href="https://n.example/">n</a>'
    )
    out = rewrite_links(body, _click, frozenset({"https://u.example/unsub"}))
    assert '<a href="https://t.example/t/c/https://a.example/x?p=1&amp;q=2">' in out
    assert '<a HREF="https://t.example/t/c/http://b.example/">' in out
    assert '<AREA href="https://t.example/t/c/https://c.example/">' in out
    for kept in ["mailto:x@y.z", '"tel:+1"', '"#top"', '"/relative"', '"https://u.example/unsub"']:
        assert kept in out
    assert '<a data-postroom-notrack href="https://n.example/">' in out


def test_pixel_goes_before_the_last_body_end_or_at_the_end() -> None:
    assert add_pixel("<html><BODY>x</Body></html>", "https://t/o.gif") == (
        '<html><BODY>x<img src="https://t/o.gif" width="1" height="1" alt="" '
        'style="display:none"></Body></html>'
    )
    assert add_pixel("x", "p").startswith('x<img src="p"')


@pytest.mark.parametrize("key", [b"", b"k", b"k" * 64, b"k" * 65, bytes(range(256))])
def test_the_reusable_signer_signs_as_sign_does(key: bytes) -> None:
    parts = ("track-click", "12345", "aHR0cHM6Ly9leGFtcGxlLmNvbQ", "é")
    assert Signer(key).sign(*parts) == sign(key, *parts)
    assert Signer(key).sign() == sign(key)
