"""Text that arrives over the API: NUL is refused everywhere (no database stores it and no
mail may carry it), and one-line values lose their control characters."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def refuse_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL characters are not allowed")
    return value


def one_line(value: str) -> str:
    """Runs of control characters (CR, LF, TAB, NUL...) become one space; ends trimmed."""
    return _CONTROLS.sub(" ", value).strip() if not value.isprintable() else value


#: Free text such as metadata values: anything but NUL.
Text = Annotated[str, AfterValidator(refuse_nul)]
#: A value that may end up in a header (names, subjects): kept to one clean line.
OneLine = Annotated[str, AfterValidator(one_line)]
