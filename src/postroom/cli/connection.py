"""How the remote commands reach the platform and how they fail: the exit codes, one
``error (<code>): message`` line on stderr instead of a traceback, and ``connect``, which turns
the SDK's exceptions into that line."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

import httpx
import typer

from postroom.cli.output import err_console
from postroom.client import ApiError, Client, TemplateInvalid, TransportError

# The exit codes of `postroom send` and `postroom campaigns` (README, "Command line").
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_FAILED = 3
EXIT_CANCELLED = 4
EXIT_UNREACHABLE = 5
EXIT_INTERRUPTED = 130


class CommandFailed(Exception):
    """Ends a command with ``error (<code>): <message>`` on stderr and ``exit_code``."""

    def __init__(self, *, code: str, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.exit_code = exit_code


P = ParamSpec("P")
R = TypeVar("R")


def reports_failures(func: Callable[P, R]) -> Callable[P, R]:
    """One line on stderr and the documented exit code instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CommandFailed as failure:
            err_console.print(
                f"[red]error ({failure.code}):[/red] {failure.message}",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(failure.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


@contextmanager
def connect(url: str, api_key: str | None) -> Iterator[Client]:
    """A ``Client`` for the platform at ``url``; the SDK's errors leave as ``CommandFailed``."""
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise CommandFailed(
            code="usage",
            message=f"--url {url!r} is not an http:// or https:// URL",
            exit_code=EXIT_USAGE,
        )
    if not api_key:
        raise CommandFailed(
            code="missing_api_key",
            message="pass --api-key or set POSTROOM_API_KEY",
            exit_code=EXIT_USAGE,
        )
    try:
        with Client(url, api_key) as client:
            yield client
    except ApiError as exc:
        raise CommandFailed(code=exc.code, message=exc.message, exit_code=EXIT_REFUSED) from None
    except TemplateInvalid as exc:
        raise CommandFailed(
            code="template_invalid", message=str(exc), exit_code=EXIT_REFUSED
        ) from None
    except TransportError as exc:
        raise CommandFailed(
            code="unreachable", message=unreachable(url, exc), exit_code=EXIT_UNREACHABLE
        ) from None


def unreachable(url: str, failure: TransportError) -> str:
    """Name the address that could not be reached: ``--url``, or an upload URL the platform
    handed out (built from the server's POSTROOM_BASE_URL, which may point elsewhere)."""
    cause = failure.__cause__ or failure
    target = url
    if isinstance(cause, httpx.RequestError):
        with suppress(RuntimeError):  # raised when the error came before any request
            target = str(cause.request.url.copy_with(query=None))
    if target.startswith(url.rstrip("/") + "/") or target == url:
        return f"cannot reach Postroom at {url} ({cause}); is it running? (--url, POSTROOM_URL)"
    return (
        f"cannot reach the upload URL {target} that Postroom at {url} handed out ({cause}); "
        "is POSTROOM_BASE_URL right on the server?"
    )
