"""Plain-text versions of rendered HTML, for the text/plain part of every message."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose content a reader never sees as text.
_HIDDEN = frozenset({"head", "style", "script", "title", "template", "noscript"})

# The line break an element asks for where it opens and where it closes: 1 starts a new line,
# 2 leaves a blank line. Neighbouring requests merge, so </div><div> is one break, not two.
_OPENING_BREAKS = {
    "div": 1,
    "tr": 1,
    "li": 1,
    "ul": 1,
    "ol": 1,
    "section": 1,
    "article": 1,
    "header": 1,
    "footer": 1,
    "p": 2,
    "table": 2,
    "blockquote": 2,
    "hr": 2,
    **{f"h{level}": 2 for level in range(1, 7)},
}
_CLOSING_BREAKS = {
    **_OPENING_BREAKS,
    "li": 0,
    "ul": 2,
    "ol": 2,
}

# Links whose target means nothing outside a browser.
_UNSHOWN_LINK_PREFIXES = ("#", "javascript:", "data:")

_WHITESPACE = re.compile(r"\s+")
# Zero-width characters that newsletters use as spacers; invisible in HTML, noise in text.
_INVISIBLE = re.compile("[\u00ad\u034f\u200b-\u200d\u2060\ufeff]+")
_SPACE_RUNS = re.compile(" {2,}")
_SPACES_AT_LINE_ENDS = re.compile(" ?\n ?")
_BLANK_LINE_RUNS = re.compile("\n{3,}")


def html_to_text(html: str) -> str:
    """Return a readable plain-text version of ``html``, ending with exactly one newline.

    Hidden parts (head, style, script) are dropped, block elements become line breaks, list
    items get "- ", links become "text (url)" unless the text already is the url, entities are
    decoded and whitespace is collapsed. Nothing is wrapped.
    """
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    text = _INVISIBLE.sub("", "".join(collector.chunks))
    text = _SPACE_RUNS.sub(" ", text)
    text = _SPACES_AT_LINE_ENDS.sub("\n", text)
    text = _BLANK_LINE_RUNS.sub("\n\n", text)
    return text.strip() + "\n"


class _TextCollector(HTMLParser):
    """Collects text chunks and line breaks as the parser walks the document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._hidden_depth = 0
        self._pending_breaks = 0
        # (index of the first chunk inside the link, href) for every open <a>.
        self._open_links: list[tuple[int, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden_depth += 1
            return
        if tag == "body":
            # Some mail omits </head>; the body is visible whatever came before.
            self._hidden_depth = 0
        if self._hidden_depth:
            return
        if tag == "br":
            # Unlike block edges, consecutive <br>s add up: <br><br> is a blank line.
            self._pending_breaks = min(2, self._pending_breaks + 1)
        elif tag in _OPENING_BREAKS:
            self._pending_breaks = max(self._pending_breaks, _OPENING_BREAKS[tag])
            if tag == "li":
                self._write("- ")
        elif tag in ("td", "th"):
            self._write(" ")
        elif tag == "a":
            href = next((value for name, value in attrs if name == "href"), None) or ""
            self._open_links.append((len(self.chunks), href.strip()))
        elif tag == "img":
            alt = next((value for name, value in attrs if name == "alt"), None)
            if alt and not alt.isspace():
                self._write(_WHITESPACE.sub(" ", alt))

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif self._hidden_depth:
            return
        elif tag == "a" and self._open_links:
            self._close_link(*self._open_links.pop())
        elif tag in _CLOSING_BREAKS:
            self._pending_breaks = max(self._pending_breaks, _CLOSING_BREAKS[tag])

    def handle_data(self, data: str) -> None:
        if self._hidden_depth:
            return
        if data.isspace():
            # Whitespace between blocks must not turn a pending line break into a space.
            if not self._pending_breaks:
                self.chunks.append(" ")
            return
        self._write(_WHITESPACE.sub(" ", data))

    def _write(self, text: str) -> None:
        if self._pending_breaks:
            self.chunks.append("\n" * self._pending_breaks)
            self._pending_breaks = 0
        self.chunks.append(text)

    def _close_link(self, first_chunk: int, href: str) -> None:
        if not href or href.lower().startswith(_UNSHOWN_LINK_PREFIXES):
            return
        label = " ".join("".join(self.chunks[first_chunk:]).split())
        if not label:
            self._write(href)
        elif not _is_same_target(label, href):
            self._write(f" ({href})")


def _is_same_target(label: str, href: str) -> bool:
    """True when a link's text already tells the reader where it goes."""
    if href.lower().startswith("mailto:"):
        href = href[len("mailto:") :].split("?", 1)[0]
    return label.rstrip("/") == href.rstrip("/")
