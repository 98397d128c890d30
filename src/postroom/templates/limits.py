"""Render limits: what one message's render may spend (time, loop steps, bytes built and
written), and the budget that every sandbox hook charges before the work is done."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sized
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2.runtime import Undefined
from jinja2.sandbox import SecurityError
from jinja2.utils import Namespace

from postroom.config import Settings

DEFAULT_RENDER_MAX_BYTES = 2 * 1024 * 1024
DEFAULT_RENDER_TIMEOUT_SECONDS = 1.0
DEFAULT_RENDER_MAX_ITERATIONS = 100_000

# What a render may build in all (strings, lists, the output of macros and {% set %} blocks)
# as a multiple of the rendered size: room for macros and filters, never for a memory bomb.
MEMORY_FACTOR = 8
# What one list, tuple or dict entry counts for, besides its contents: a slot and an object.
ITEM_BYTES = 64
# Lists nested deeper than this are refused: printing them would recurse in C.
MAX_NESTING = 64


@dataclass(frozen=True, slots=True)
class RenderLimits:
    """The limits of one message's render: all its parts (subject, HTML, text) together."""

    max_bytes: int = DEFAULT_RENDER_MAX_BYTES
    timeout_seconds: float = DEFAULT_RENDER_TIMEOUT_SECONDS
    max_iterations: int = DEFAULT_RENDER_MAX_ITERATIONS

    @classmethod
    def from_settings(cls, settings: Settings) -> RenderLimits:
        return cls(
            max_bytes=settings.render_max_bytes,
            timeout_seconds=settings.render_timeout_seconds,
            max_iterations=settings.render_max_iterations,
        )

    @property
    def memory_bytes(self) -> int:
        return self.max_bytes * MEMORY_FACTOR


class LimitExceeded(Exception):
    """A render went over one of its limits; ``limit`` names which one."""

    def __init__(self, limit: str, detail: str) -> None:
        super().__init__(f"{limit}: {detail}")
        self.limit = limit
        self.detail = detail


class RenderBudget:
    """What is left of one render's limits; the sandbox charges it before doing the work."""

    __slots__ = ("deadline", "iterations_left", "limits", "memory_left", "output_left")

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.timeout_seconds
        self.iterations_left = limits.max_iterations
        self.memory_left = limits.memory_bytes
        self.output_left = limits.max_bytes

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise LimitExceeded(
                "render_time", f"rendering took longer than {self.limits.timeout_seconds:g} s"
            )

    def spend_iterations(self, count: int) -> None:
        self.iterations_left -= count
        if self.iterations_left < 0:
            raise LimitExceeded(
                "iterations", f"loops would run more than {self.limits.max_iterations} times"
            )
        self.check_time()

    def spend_memory(self, size: int) -> None:
        """Charge ``size`` bytes for a value about to be built (or just built)."""
        self.memory_left -= size
        if self.memory_left < 0:
            raise LimitExceeded(
                "memory", f"the template builds more than {self.limits.memory_bytes} bytes"
            )
        self.check_time()

    def check_fits(self, size: int) -> None:
        """Refuse a value of ``size`` bytes before it is built (it is charged once built)."""
        if size > self.memory_left:
            raise LimitExceeded(
                "memory", f"a value would take more than the {self.memory_left} bytes left"
            )

    def write(self, size: int) -> None:
        """Charge ``size`` bytes of the message's rendered parts."""
        self.output_left -= size
        if self.output_left < 0:
            raise LimitExceeded(
                "rendered_size", f"the message is larger than {self.limits.max_bytes} bytes"
            )
        self.check_time()

    def counted(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """Iterate ``iterable`` for a template loop, charging each step and watching the time."""
        if isinstance(iterable, Sized):
            self.spend_iterations(len(iterable))
            deadline = self.deadline
            for item in iterable:
                if time.monotonic() > deadline:
                    self.check_time()  # raises
                yield item
            return
        for item in iterable:
            self.spend_iterations(1)
            yield item


#: The budget of the render in progress in this thread or task (None: no render).
running_budget: ContextVar[RenderBudget | None] = ContextVar("render_budget", default=None)


def current_budget() -> RenderBudget:
    """The budget of the render in progress; rendering without one is refused."""
    budget = running_budget.get()
    if budget is None:
        raise LimitExceeded("render_time", "templates render only through CompiledTemplate")
    return budget


def start_budget(limits: RenderLimits) -> tuple[RenderBudget, Any]:
    """Open a budget for one render; pass the token to ``end_budget`` when it is over."""
    budget = RenderBudget(limits)
    return budget, running_budget.set(budget)


def end_budget(token: Any) -> None:
    running_budget.reset(token)


def printed_size(value: Any, limit: int, *, plain_only: bool = False, depth: int = 0) -> int:
    """About how many bytes ``value`` takes when printed (lists with all their items), counting
    no further than just past ``limit``: enough to refuse a value without building it.

    With ``plain_only``, anything but text, numbers, lists, tuples, dicts and ranges is refused
    (SecurityError): the printed form of a function, class or Jinja object names its module.
    """
    if isinstance(value, str):
        return len(value)
    if value is None or isinstance(value, bool | float):
        return 24
    if isinstance(value, int):
        return 24 + value.bit_length() // 3
    if isinstance(value, Namespace) and not plain_only:
        value = object.__getattribute__(value, "_Namespace__attrs")
    if isinstance(value, dict):
        items: Iterable[Any] = (part for pair in value.items() for part in pair)
        count = 2 * len(value)
    elif isinstance(value, (list, tuple, set, frozenset, *_DICT_VIEWS)):
        items, count = value, len(value)  # type: ignore[assignment,arg-type]
    elif isinstance(value, range | Undefined) or not plain_only:
        # (printing a StrictUndefined raises the error that names the missing field)
        return ITEM_BYTES  # a range, a generator, a macro...: printed as a short name
    else:
        raise SecurityError("only text, numbers, lists and dicts can be printed")
    if depth > MAX_NESTING:
        raise LimitExceeded("memory", f"values are nested more than {MAX_NESTING} deep")
    total = ITEM_BYTES * count
    for item in items:
        if total > limit:
            break
        total += printed_size(item, limit - total, plain_only=plain_only, depth=depth + 1)
    return total


_DICT_VIEWS: tuple[type, ...] = (type({}.keys()), type({}.values()), type({}.items()))
