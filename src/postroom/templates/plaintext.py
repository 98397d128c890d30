"""Plain-text versions of rendered HTML, for the text/plain part of every message."""

from __future__ import annotations

import re
from html import unescape

# Elements whose content a reader never sees as text.
_HIDDEN = frozenset({"head", "title", "template", "noscript"})

# One piece of markup: a comment, a declaration (<!DOCTYPE>, <![endif]>) or processing
# instruction, or a start or end tag (groups: "/", name, attributes). Every alternative can
# run to the end of the input, as the HTML tokenizer does, so an unclosed quote or comment ends
# the scan instead of making it retry at each later "<": the scan stays linear.
_MARKUP = re.compile(
    r"<!--.*?(?:-->|\Z)"
    r"|<[!?][^>]*(?:>|\Z)"
    r"""|<(/?)([a-zA-Z][^\s/>]*)((?:[^>"']+|"[^"]*(?:"|\Z)|'[^']*(?:'|\Z))*)(?:>|\Z)""",
    re.DOTALL,
)
# Script and style hold raw text up to their end tag; no markup inside them counts.
_RAW_TEXT_ENDS = {
    name: re.compile(rf"</{name}\b[^>]*(?:>|\Z)", re.IGNORECASE) for name in ("script", "style")
}
_ATTRIBUTE = re.compile(r"""([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]*)))?""")

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

# Elements that make no difference to the text are skipped as soon as they are seen.
_MEANINGFUL = frozenset(
    {*_HIDDEN, *_RAW_TEXT_ENDS, *_OPENING_BREAKS, *_CLOSING_BREAKS, "body", "br", "td", "th"}
    | {"a", "img"}
)

# Links whose target means nothing outside a browser.
_UNSHOWN_LINK_PREFIXES = ("#", "javascript:", "data:")

# Zero-width characters that newsletters use as spacers; invisible in HTML, noise in text.
_INVISIBLE_CHARACTERS = "\u00ad\u034f\u200b\u200c\u200d\u2060\ufeff"
_INVISIBLE = re.compile(f"[{_INVISIBLE_CHARACTERS}]+")


def html_to_text(html: str) -> str:
    """Return a readable plain-text version of ``html``, ending with exactly one newline.

    Hidden parts (head, style, script) are dropped, block elements become line breaks, list
    items get "- ", links become "text (url)" unless the text already is the url, entities are
    decoded and whitespace is collapsed. Nothing is wrapped.
    """
    # A hand-written scanner rather than html.parser: that one costs ~15 µs a tag, which made
    # this the slowest step of sending a message.
    if "\0" in html:
        html = html.replace("\0", "")  # NUL marks line breaks below; in HTML it is an error
    writer = _TextWriter()
    position = 0
    while (markup := _MARKUP.search(html, position)) is not None:
        if markup.start() > position:
            writer.write_data(html[position : markup.start()])
        position = markup.end()
        slash, name, attributes = markup.groups()
        if name is None:  # a comment or declaration
            continue
        name = name.lower()
        if name not in _MEANINGFUL:
            continue
        if slash:
            writer.end_element(name)
        elif name in _RAW_TEXT_ENDS:
            raw_text_end = _RAW_TEXT_ENDS[name].search(html, position)
            position = len(html) if raw_text_end is None else raw_text_end.end()
        else:
            writer.start_element(name, attributes)
    writer.write_data(html[position:])
    return writer.text()


class _TextWriter:
    """Turns the elements and text of a document, in order, into lines of plain text."""

    __slots__ = ("_chunks", "_hidden_depth", "_open_links", "_pending_breaks")

    def __init__(self) -> None:
        self._chunks: list[str] = []
        self._hidden_depth = 0
        self._pending_breaks = 0
        # (index of the first chunk inside the link, href) for every open <a>.
        self._open_links: list[tuple[int, str]] = []

    def start_element(self, name: str, attributes: str) -> None:
        if name in _HIDDEN:
            self._hidden_depth += 1
            return
        if name == "body":
            # Some mail omits </head>; the body is visible whatever came before.
            self._hidden_depth = 0
        if self._hidden_depth:
            return
        if name == "br":
            # Unlike block edges, consecutive <br>s add up: <br><br> is a blank line.
            self._pending_breaks = min(2, self._pending_breaks + 1)
        elif name in _OPENING_BREAKS:
            self._pending_breaks = max(self._pending_breaks, _OPENING_BREAKS[name])
            if name == "li":
                self._write("- ")
        elif name in ("td", "th"):
            self._write(" ")
        elif name == "a":
            href = (_attribute(attributes, "href") or "").strip()
            self._open_links.append((len(self._chunks), href))
        elif name == "img":
            alt = _attribute(attributes, "alt")
            if alt and not alt.isspace():
                self._write(alt)

    def end_element(self, name: str) -> None:
        if name in _HIDDEN:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif self._hidden_depth:
            return
        elif name == "a" and self._open_links:
            self._close_link(*self._open_links.pop())
        elif name in _CLOSING_BREAKS:
            self._pending_breaks = max(self._pending_breaks, _CLOSING_BREAKS[name])

    def write_data(self, data: str) -> None:
        if not data or self._hidden_depth:
            return
        if "&" in data:
            data = unescape(data)
        if data.isspace():
            # Whitespace between blocks must not turn a pending line break into a space.
            if not self._pending_breaks:
                self._chunks.append(" ")
            return
        self._write(data)

    def text(self) -> str:
        # Whitespace in the source, newlines included, is collapsed in one pass at the end;
        # the line breaks the elements asked for are NULs until then. str methods rather than
        # regular expressions throughout: they are several times faster on a whole message.
        text = "".join(self._chunks)
        if any(character in text for character in _INVISIBLE_CHARACTERS):
            text = _INVISIBLE.sub("", text)
        text = " ".join(text.split()).replace("\0", "\n")
        text = text.replace(" \n", "\n").replace("\n ", "\n")
        while "\n\n\n" in text:
            text = text.replace("\n\n\n", "\n\n")
        return text.strip() + "\n"

    def _write(self, text: str) -> None:
        if self._pending_breaks:
            self._chunks.append("\0" * self._pending_breaks)
            self._pending_breaks = 0
        self._chunks.append(text)

    def _close_link(self, first_chunk: int, href: str) -> None:
        if not href or href.lower().startswith(_UNSHOWN_LINK_PREFIXES):
            return
        label = " ".join("".join(self._chunks[first_chunk:]).replace("\0", " ").split())
        if not label:
            self._write(href)
        elif not _is_same_target(label, href):
            self._write(f" ({href})")


def _attribute(attributes: str, wanted: str) -> str | None:
    """The decoded value of one attribute in a start tag's attribute text, if present."""
    for match in _ATTRIBUTE.finditer(attributes):
        if match.group(1).lower() == wanted:
            value = match.group(2) or match.group(3) or match.group(4) or ""
            return unescape(value) if "&" in value else value
    return None


def _is_same_target(label: str, href: str) -> bool:
    """True when a link's text already tells the reader where it goes."""
    if href.lower().startswith("mailto:"):
        href = href[len("mailto:") :].split("?", 1)[0]
    return label.rstrip("/") == href.rstrip("/")
