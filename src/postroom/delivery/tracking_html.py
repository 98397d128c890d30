"""Rewrites a rendered HTML body for open and click tracking, in one regex pass per message.

Every http(s) ``href`` of an ``<a>`` or ``<area>`` becomes ``{base_url}/t/c/<token>``; the
unsubscribe link, mailto:, tel:, #anchors, relative links and ``<a data-postroom-notrack>`` are
left alone. The open pixel goes just before ``</body>`` (or at the end). Links inside HTML
comments are rewritten too (harmless: nobody can click them). The text part is never touched.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Collection

_TAG = re.compile(r"<(?:a|area)\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"""(\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)
_NOTRACK = re.compile(r"\bdata-postroom-notrack\b", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_TRACKED_SCHEME = re.compile(r"https?://", re.IGNORECASE)


def rewrite_links(
    body: str, click_url: Callable[[str], str], untracked: frozenset[str] = frozenset()
) -> str:
    """Each trackable link's (unescaped) URL replaced by ``click_url(url)``, re-escaped."""
    return LinkRewriter().rewrite(body, click_url, untracked)


class LinkRewriter:
    """:func:`rewrite_links` for every message of a campaign: how each distinct ``<a>`` tag
    splits around its URL is worked out once and remembered, since the messages of a campaign
    repeat the same tags; per message only the click URLs are new."""

    def __init__(self, max_tags: int = 4096) -> None:
        self._tags: dict[str, tuple[str, str, str] | None] = {}
        self._max_tags = max_tags

    def rewrite(
        self,
        body: str,
        click_url: Callable[[str], str],
        untracked: Collection[str] = frozenset(),
    ) -> str:
        """``body`` with each trackable link's URL replaced by ``click_url(url)``; the URLs in
        ``untracked`` (a message's own unsubscribe link) are left as they are."""

        def one_tag(match: re.Match[str]) -> str:
            tag = match.group(0)
            parts = self._tags.get(tag, _UNSEEN)
            if parts is _UNSEEN:
                parts = self._split(tag)
                if len(self._tags) >= self._max_tags:
                    self._tags.clear()
                self._tags[tag] = parts
            if parts is None or parts[1] in untracked:
                return tag
            before, url, after = parts
            return f'{before}"{html.escape(click_url(url), quote=True)}"{after}'

        return _TAG.sub(one_tag, body)

    def _split(self, tag: str) -> tuple[str, str, str] | None:
        """(text before the href value, the URL, text after it), or None: not tracked."""
        if _NOTRACK.search(tag):
            return None
        found = _HREF.search(tag)
        if found is None:
            return None
        raw = next(v for v in found.group(2, 3, 4) if v is not None)
        url = html.unescape(raw).strip()
        if not _TRACKED_SCHEME.match(url):
            return None
        return tag[: found.start()] + found.group(1), url, tag[found.end() :]


_UNSEEN: tuple[str, str, str] = ("", "", "")


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
