"""Rewrites a rendered HTML body for open and click tracking, in one regex pass per message.

Every http(s) ``href`` of an ``<a>`` or ``<area>`` becomes ``{base_url}/t/c/<token>``; the
unsubscribe link, mailto:, tel:, #anchors, relative links and ``<a data-postroom-notrack>`` are
left alone. The open pixel goes just before ``</body>`` (or at the end). Links inside HTML
comments are rewritten too (harmless: nobody can click them). The text part is never touched.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

_TAG = re.compile(r"<(?:a|area)\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"""(\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)
_NOTRACK = re.compile(r"\bdata-postroom-notrack\b", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_TRACKED_SCHEME = re.compile(r"https?://", re.IGNORECASE)


def rewrite_links(
    body: str, click_url: Callable[[str], str], untracked: frozenset[str] = frozenset()
) -> str:
    """Each trackable link's (unescaped) URL replaced by ``click_url(url)``, re-escaped."""

    def one_href(match: re.Match[str]) -> str:
        raw = match.group(2) if match.group(2) is not None else match.group(3)
        if raw is None:
            raw = match.group(4)
        url = html.unescape(raw).strip()
        if not _TRACKED_SCHEME.match(url) or url in untracked:
            return match.group(0)
        return f'{match.group(1)}"{html.escape(click_url(url), quote=True)}"'

    def one_tag(match: re.Match[str]) -> str:
        tag = match.group(0)
        if _NOTRACK.search(tag):
            return tag
        return _HREF.sub(one_href, tag, count=1)

    return _TAG.sub(one_tag, body)


def pixel_tag(pixel_url: str) -> str:
    return (
        f'<img src="{html.escape(pixel_url, quote=True)}" width="1" height="1" alt="" '
        'style="display:none">'
    )


def add_pixel(body: str, pixel_url: str) -> str:
    """The open pixel just before the last ``</body>``, or at the end when there is none."""
    tag = pixel_tag(pixel_url)
    ends = list(_BODY_END.finditer(body))
    if not ends:
        return body + tag
    at = ends[-1].start()
    return body[:at] + tag + body[at:]
