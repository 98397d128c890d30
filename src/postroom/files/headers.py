"""Column names: turning a CSV header row into template-safe identifiers and finding the email."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from itertools import groupby

from postroom.errors import FileRejected

EMAIL_COLUMN_CANDIDATES = ("email", "email_address", "e_mail", "mail")

# Characters stripped from both ends before anything else: spreadsheets leave byte-order marks
# and zero-width spaces in the first header cell.
_INVISIBLE = "\ufeff\u200b"
_COLUMNS_NAMED_IN_MESSAGE = 20


def identifier_for(raw: str) -> str:
    """The identifier one header cell becomes, or "" when nothing usable is left.

    Trims, lower-cases, turns every run of characters that cannot appear in an identifier into
    one "_", trims "_" from both ends, and prefixes "col_" when the result would start with a
    digit. Letters of any script are kept, so the result works as a Jinja variable name.
    """
    # NFKC first so that full-width letters, ligatures and superscript digits become the
    # plain characters a template author would type.
    text = unicodedata.normalize("NFKC", raw.strip().strip(_INVISIBLE).strip()).lower()
    name = "".join(
        "".join(run) if is_word else "_" for is_word, run in groupby(text, key=_is_word_char)
    ).strip("_")
    if name and not name.isidentifier():
        name = "col_" + name
    return name


def normalise_headers(raw: Sequence[str]) -> tuple[list[str], list[str]]:
    """Identifiers for every header cell, unique and in order, plus warnings for the user.

    Empty names become ``column_<1-based position>``; a name that repeats gets ``_2``, ``_3``…
    (never colliding with another column's name) and one warning per repeated name.
    """
    bases = [identifier_for(cell) or f"column_{position}" for position, cell in enumerate(raw, 1)]
    taken = set(bases)
    names: list[str] = []
    seen: dict[str, list[int]] = {}
    for index, base in enumerate(bases):
        positions = seen.setdefault(base, [])
        positions.append(index)
        if len(positions) == 1:
            names.append(base)
            continue
        suffix = len(positions)
        while f"{base}_{suffix}" in taken:
            suffix += 1
        taken.add(f"{base}_{suffix}")
        names.append(f"{base}_{suffix}")
    warnings = [
        _duplicate_warning(base, [raw[i] for i in positions], [names[i] for i in positions])
        for base, positions in seen.items()
        if len(positions) > 1
    ]
    return names, warnings


def find_email_column(columns: Sequence[str], requested: str | None) -> str:
    """The normalised name of the column holding addresses.

    ``requested`` (as the user typed it) is normalised like a header and must be present;
    without it the first of ``EMAIL_COLUMN_CANDIDATES`` present wins. Raises FileRejected
    with code ``no_email_column`` otherwise.
    """
    if requested is not None:
        wanted = identifier_for(requested)
        if wanted in columns:
            return wanted
        raise FileRejected(
            f"The email column {requested!r} (read as {wanted!r}) is not in the file; "
            f"its columns are {_column_list(columns)}.",
            code="no_email_column",
            details={"requested": requested, "normalised": wanted, "columns": list(columns)},
        )
    for candidate in EMAIL_COLUMN_CANDIDATES:
        if candidate in columns:
            return candidate
    raise FileRejected(
        f"No email column found: name one of {', '.join(EMAIL_COLUMN_CANDIDATES)} or say which "
        f"column to use; the file's columns are {_column_list(columns)}.",
        code="no_email_column",
        details={"candidates": list(EMAIL_COLUMN_CANDIDATES), "columns": list(columns)},
    )


def _is_word_char(char: str) -> bool:
    # Identifier characters rather than isalnum(): that keeps the combining vowel signs that
    # Indic scripts need and drops characters such as "½" that no identifier may contain.
    return ("_" + char).isidentifier()


def _duplicate_warning(base: str, originals: list[str], names: list[str]) -> str:
    quoted = ", ".join(repr(original) for original in originals[:-1])
    both = "both" if len(originals) == 2 else "all"
    return (
        f"Columns {quoted} and {originals[-1]!r} {both} read as {base!r}; "
        f"they are named {', '.join(names)} in that order."
    )


def _column_list(columns: Sequence[str]) -> str:
    if not columns:
        return "(none)"
    shown = ", ".join(columns[:_COLUMNS_NAMED_IN_MESSAGE])
    hidden = len(columns) - _COLUMNS_NAMED_IN_MESSAGE
    return f"{shown} and {hidden} more" if hidden > 0 else shown
