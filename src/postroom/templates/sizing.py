"""Sizing: what a filter, a method of text or an operator would build, measured before it is
built (padding, replacing, joining, repeating, formatting), then charged to the budget."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from jinja2.sandbox import SecurityError

from postroom.templates.limits import ITEM_BYTES, LimitExceeded, current_budget, printed_size

# Sequence repetition and powers are the one-line ways to make a render eat all memory or CPU.
MAX_REPEATED_LENGTH = 100_000
MAX_NUMBER_BITS = 4096

_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})
# printf-style widths and precisions ("%-20.3f", "%*d"): the way to pad a value to gigabytes.
_PRINTF_SIZES = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?")


def checked_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that checks what it would build before running and charges what it built."""
    # Filters that get the context, eval context or environment first have it in args[0].
    skip = 1 if hasattr(function, "jinja_pass_arg") else 0
    check = _FILTER_CHECKS.get(name)
    prints = name in _PRINTING_FILTERS

    @functools.wraps(function)
    def run_filter(*args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        budget.check_time()
        if prints:
            for argument in (*args[skip:], *kwargs.values()):
                printed_size(argument, budget.memory_left, plain_only=True)
        if check is not None:
            args = (*args[:skip], *check(budget.memory_left, list(args[skip:]), kwargs))
        result = function(*args, **kwargs)
        budget.spend_memory(printed_size(result, budget.memory_left))
        return result

    return run_filter


def _fits(size: int, limit: int) -> None:
    if size > limit:
        raise LimitExceeded("memory", f"a value would take more than the {limit} bytes left")


def _argument(args: list[Any], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _check_padding(limit: int, args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    width = _argument(args, kwargs, 1, "width", 80)
    if isinstance(width, int):
        _fits(width, limit)
    return args


def _check_indent(limit: int, args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    width = _argument(args, kwargs, 1, "width", 4)
    step = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    text = str(args[0]) if args else ""
    _fits(len(text) + (text.count("\n") + 1) * step, limit)
    return args


def _check_replace(limit: int, args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    text, old, new = (str(_argument(args, kwargs, i, n, "")) for i, n in _REPLACE_ARGS)
    _fits(_replaced_size(text, old, new), limit)
    return args


_REPLACE_ARGS = ((0, "s"), (1, "old"), (2, "new"))


def _replaced_size(text: str, old: str, new: str) -> int:
    occurrences = len(text) + 1 if old == "" else text.count(old)
    return len(text) + occurrences * max(0, len(new) - len(old))


def _check_join(limit: int, args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    items = list(args[0]) if args else []  # a generator is consumed once: keep the items
    separator = str(_argument(args, kwargs, 1, "d", ""))
    _fits(printed_size(items, limit, plain_only=True) + len(separator) * len(items), limit)
    return [items, *args[1:]]


def _check_fill(limit: int, args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    # batch(n) and slice(n) make n-item lists (or n lists) whatever the input's length.
    count = args[1] if len(args) > 1 else kwargs.get("linecount", kwargs.get("slices"))
    if isinstance(count, int):
        _fits(count * ITEM_BYTES, limit)
    return args


def _check_sum(limit: int, args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    start = _argument(args, kwargs, 2, "start", 0)
    if not isinstance(start, int | float):
        # Adding up lists copies them over and over: quadratic, in C, beyond any clock check.
        raise SecurityError("sum adds up numbers only")
    return args


def _check_wordwrap(limit: int, args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    text = str(args[0]) if args else ""
    width = _argument(args, kwargs, 1, "width", 79)
    wrap = _argument(args, kwargs, 3, "wrapstring", None) or "\n"
    lines = len(text) // max(width, 1) + text.count("\n") + 1 if isinstance(width, int) else 1
    _fits(len(text) + lines * len(str(wrap)), limit)
    return args


def _check_format(limit: int, args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    if args and isinstance(args[0], str):
        check_printf(args[0], tuple(args[1:]) or kwargs)
    return args


# Filters that print their value or arguments into text: plain data only.
_PRINTING_FILTERS = frozenset(
    "capitalize center e escape filesizeformat forceescape format indent lower pprint "  # noqa: SIM905
    "replace safe string striptags title tojson trim truncate upper urlencode urlize "
    "wordcount wordwrap xmlattr".split()
)

_FILTER_CHECKS: dict[str, Callable[[int, list[Any], dict[str, Any]], list[Any]]] = {
    "center": _check_padding,
    "indent": _check_indent,
    "replace": _check_replace,
    "join": _check_join,
    "batch": _check_fill,
    "slice": _check_fill,
    "sum": _check_sum,
    "wordwrap": _check_wordwrap,
    "format": _check_format,
}


def check_str_method(name: str, text: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    limit = current_budget().memory_left
    if name in _PADDING_METHODS and args and isinstance(args[0], int):
        _fits(args[0], limit)
    elif name == "expandtabs":
        tab_size = args[0] if args and isinstance(args[0], int) else 8
        _fits(len(text) + text.count("\t") * tab_size, limit)
    elif name == "replace" and len(args) >= 2:
        _fits(_replaced_size(text, str(args[0]), str(args[1])), limit)
    elif name == "join" and args:
        items = list(args[0])
        _fits(printed_size(items, limit) + len(text) * len(items), limit)
        return (items, *args[1:])
    return args


def check_printf(template: str, values: Any) -> None:
    """Refuse widths and precisions ("%999999999d", "%*d") past the memory budget."""
    limit = current_budget().memory_left
    for match in _PRINTF_SIZES.finditer(template):
        for size in match.groups():
            if size is None:
                continue
            if size == "*":
                # A size taken from the values: any number among them could be it.
                numbers = values if isinstance(values, tuple) else (values,)
                for number in numbers:
                    if isinstance(number, int):
                        _fits(abs(number), limit)
            else:
                _fits(int(size), limit)


def check_product_size(left: Any, right: Any) -> None:
    if not isinstance(right, int):
        return
    if isinstance(left, str | bytes | list | tuple):
        if len(left) * right > MAX_REPEATED_LENGTH:
            raise LimitExceeded(
                "repetition", f"the repeated value would be longer than {MAX_REPEATED_LENGTH}"
            )
        budget = current_budget()
        budget.check_fits(printed_size(left, budget.memory_left) * max(right, 0))
    elif isinstance(left, int) and left.bit_length() + right.bit_length() > MAX_NUMBER_BITS:
        raise LimitExceeded("number_size", f"the product would be over {MAX_NUMBER_BITS} bits")


def check_power_size(base: Any, exponent: Any) -> None:
    # Floats overflow with an error by themselves; integers just keep growing.
    is_integer_power = isinstance(base, int) and isinstance(exponent, int) and exponent > 0
    if is_integer_power and base.bit_length() * exponent > MAX_NUMBER_BITS:
        raise LimitExceeded("number_size", f"the power would be over {MAX_NUMBER_BITS} bits")
