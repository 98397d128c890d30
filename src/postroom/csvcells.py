"""Cells of the CSV files Postroom hands out (row reports, suppression exports): text from
recipients, bounces or API clients must never be run by a spreadsheet as a formula."""

from __future__ import annotations

from collections.abc import Iterable

#: Spreadsheets (Excel, LibreOffice, Google Sheets) read cells that start with these as
#: formulas, or (tab, CR, LF) skip them and read what follows as one.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def neutralise_cell(value: str) -> str:
    """``value`` with a leading ``'`` when it would start a formula (OWASP's advice: the
    spreadsheet shows it as text, and the ``'`` tells a reader why)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def neutralised_row(values: Iterable[object]) -> list[object]:
    """A row for ``csv.writer`` with every text cell neutralised; numbers stay numbers."""
    return [neutralise_cell(v) if isinstance(v, str) else v for v in values]
