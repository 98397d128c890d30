"""How the CLI reports: one clear line for configuration and user errors, never a traceback."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from postroom.errors import ConfigError, PostroomError

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn ConfigError and PostroomError into one line on stderr and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            err_console.print(
                f"[red]configuration error:[/red] {exc}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(2) from None
        except PostroomError as exc:
            err_console.print(
                f"[red]error ({exc.code}):[/red] {exc.message}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(1) from None

    return wrapper


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=str, indent=2) + "\n")
