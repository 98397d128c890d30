"""Open and click tracking tokens, and the rule that tells scanners and image proxies from people.

An open token names a message; a click token names a message and the exact URL the sender's
HTML linked to, so a redirect can only ever go where the message itself pointed. Signatures are
truncated to 128 bits (22 base64url characters) to keep links short.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from datetime import datetime

from postroom.signing import Signer, sign

_OPEN = "track-open"
_CLICK = "track-click"
_SIG_CHARS = 22  # 22 base64url characters = 132 bits >= 128


def _signature(key: bytes, *parts: str) -> str:
    return sign(key, *parts)[:_SIG_CHARS]


def _verified(key: bytes, signature: str, *parts: str) -> bool:
    return (
        len(signature) == _SIG_CHARS
        and signature.isascii()
        and hmac.compare_digest(_signature(key, *parts), signature)
    )


def open_token(key: bytes, message_pk: int) -> str:
    """``<message id>.<signature>``."""
    return f"{message_pk}.{_signature(key, _OPEN, str(message_pk))}"


def click_token(key: bytes, message_pk: int, url: str) -> str:
    """``<message id>.<url as base64url>.<signature>``: the target travels signed in the token."""
    encoded = _encoded_url(url)
    return f"{message_pk}.{encoded}.{_signature(key, _CLICK, str(message_pk), encoded)}"


class TrackingUrls:
    """The pixel and click URLs of many messages, for one key and base URL: the same tokens as
    :func:`open_token` and :func:`click_token`, made with a reused keyed hash and each target's
    base64url form remembered (a campaign links to the same few URLs in every message)."""

    def __init__(self, key: bytes, base_url: str, max_urls: int = 4096) -> None:
        self._signer = Signer(key)
        self._base = base_url.rstrip("/")
        self._encoded: dict[str, str] = {}
        self._max_urls = max_urls

    def pixel(self, message_pk: int) -> str:
        pk = str(message_pk)
        return f"{self._base}/t/o/{pk}.{self._signer.sign(_OPEN, pk)[:_SIG_CHARS]}.gif"

    def click(self, message_pk: int, url: str) -> str:
        encoded = self._encoded.get(url)
        if encoded is None:
            if len(self._encoded) >= self._max_urls:
                self._encoded.clear()
            encoded = self._encoded[url] = _encoded_url(url)
        pk = str(message_pk)
        signature = self._signer.sign(_CLICK, pk, encoded)[:_SIG_CHARS]
        return f"{self._base}/t/c/{pk}.{encoded}.{signature}"


def _encoded_url(url: str) -> str:
    return base64.urlsafe_b64encode(url.encode()).rstrip(b"=").decode()


def _pk(text: str) -> bool:
    return text.isdigit() and len(text) <= 18 and text.isascii()


def message_of_open_token(key: bytes, token: str) -> int | None:
    """The message an open token names, or None for anything forged, altered or malformed."""
    parts = token.split(".")
    if len(parts) != 2 or not _pk(parts[0]):
        return None
    return int(parts[0]) if _verified(key, parts[1], _OPEN, parts[0]) else None


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def target_of_click_token(key: bytes, token: str) -> tuple[int, str] | None:
    """The message and the URL a click token names, or None for anything forged or malformed."""
    parts = token.split(".")
    if len(parts) != 3 or not _pk(parts[0]) or not _B64URL.fullmatch(parts[1]):
        return None
    if not _verified(key, parts[2], _CLICK, parts[0], parts[1]):
        return None
    try:
        url = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return int(parts[0]), url


# Link scanners and security gateways that follow every link and fetch every image.
_SCANNER_UA = re.compile(
    r"barracuda|proofpoint|mimecast|safelinks|defender|forcepoint|fortiguard|trendmicro|"
    r"symantec|messagelabs|cisco|ironport|sophos|bot\b|bot/|crawler|spider|python-requests|"
    r"python-urllib|aiohttp|httpx|curl/|wget/|go-http-client|java/|okhttp|headlesschrome|"
    r"phantomjs|scanner|preview",
    re.IGNORECASE,
)
# Image proxies and prefetchers: a human open when late, a prefetch when right after sending.
_PROXY_UA = re.compile(r"googleimageproxy|yahoomailproxy|ymailproxy|applemail|ggpht", re.I)
_APPLE_PREFETCH = re.compile(r"^Mozilla/5\.0$")


def suspected_bot(
    user_agent: str, sent_at: datetime | None, now: datetime, window_seconds: float
) -> bool:
    """(a) a known scanner User-Agent (or none at all); or (b) a known image proxy or Apple Mail
    Privacy Protection prefetch arriving within ``window_seconds`` of the message's sending."""
    ua = user_agent.strip()
    if not ua or _SCANNER_UA.search(ua):
        return True
    if _PROXY_UA.search(ua) or _APPLE_PREFETCH.match(ua):
        return sent_at is not None and (now - sent_at).total_seconds() <= window_seconds
    return False
