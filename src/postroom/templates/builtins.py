"""The variables a template gets besides its recipient's CSV columns, and the one rule that
says whether a file's columns are enough for a template: shared by file processing, the
sender and the local preview, so that a preview fails exactly where a campaign would."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: Template variables every message has besides its CSV columns.
BUILTIN_VARIABLES = frozenset({"email", "unsubscribe_url"})


def missing_variables(variables: Iterable[str], columns: Iterable[str]) -> list[str]:
    """The variables a template uses that neither the file's columns nor the built-ins give."""
    return sorted(set(variables) - set(columns) - BUILTIN_VARIABLES)


def message_fields(row: Mapping[str, str], email: str, unsubscribe_url: str) -> dict[str, str]:
    """What one message's template renders with: its row's columns plus the built-ins (which
    win over columns of the same name)."""
    fields = dict(row)
    fields["email"] = email
    fields["unsubscribe_url"] = unsubscribe_url
    return fields
