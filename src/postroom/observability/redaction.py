"""Secrets kept out of log lines and banners: API keys, webhook secrets, passwords in URLs,
signatures and tokens in query strings, unsubscribe tokens, Authorization values, and the
address in the path of an erasure (each becomes ``***``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

REDACTED = "***"

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # pr_<key id>_<secret>: the id stays, it names the key without opening anything.
    (re.compile(r"\b(pr_[A-Za-z0-9]+_)[A-Za-z0-9_-]+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"\b(whsec_)[A-Za-z0-9_-]+"), rf"\g<1>{REDACTED}"),
    # scheme://user:password@host (SMTP relays, databases, IMAP mailboxes, webhook URLs).
    (
        re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@]*):[^\s/?#@]*@"),
        rf"\g<1>:{REDACTED}@",
    ),
    # Presigned upload URLs (sig), S3 presigned URLs, and keys or tokens put in a query.
    (
        re.compile(
            r"([?&](?:sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token"
            r"|token|access_token|api_key|apikey|key|password|passwd|secret)=)[^&\s#\"']*",
            re.IGNORECASE,
        ),
        rf"\g<1>{REDACTED}",
    ),
    # One-click unsubscribe links (/u/<message id>.<signature>): whoever holds one can
    # unsubscribe its recipient. The message id stays.
    (re.compile(r"(/u/[0-9]+\.)[A-Za-z0-9_=-]+"), rf"\g<1>{REDACTED}"),
    # DELETE /api/v1/recipients/<address>: the request that erases an address keeps it out.
    (re.compile(r"(/api/v1/recipients/)[^\s?#\"']+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"\b((?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\g<1>{REDACTED}"),
)


def redact(text: str) -> str:
    """``text`` with every secret this module knows the shape of replaced by ***."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


_PLAIN = (str, int, float, bool, type(None))
_EXCEPTION_FORMATTER = logging.Formatter()


class SecretRedactor(logging.Filter):
    """Redacts a record's message, arguments and traceback before any handler formats it.

    String arguments are redacted in place, so formatters that read ``record.args`` (uvicorn's
    access lines) keep working; when a secret hides in another argument (an exception, a
    URL object), the line is flattened to its redacted text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        if record.args and not all(isinstance(a, _PLAIN) for a in _values(record.args)):
            message = record.getMessage()
            redacted = redact(message)
            if redacted != message:
                record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = _EXCEPTION_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def _values(args: tuple[object, ...] | Mapping[str, object]) -> tuple[object, ...]:
    return tuple(args.values()) if isinstance(args, Mapping) else args
