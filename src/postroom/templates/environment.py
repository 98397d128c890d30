"""The sandboxed Jinja environment campaign templates compile in: immutable, plain data only,
and every step that builds, loops, compares or writes charges the render's budget first."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateNotFound, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import TemplateModule
from jinja2.runtime import BlockReference, Context, LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from markupsafe import Markup

from postroom.templates.library import PinnedLoader, TemplateLibrary
from postroom.templates.limits import LimitExceeded, current_budget, printed_size, running_budget
from postroom.templates.sizing import (
    check_power_size,
    check_printf,
    check_product_size,
    check_str_method,
    checked_filter,
)

# The methods a template may call on plain data: none of them reaches past the value itself.
_STR_METHODS = frozenset(
    "capitalize casefold center count endswith expandtabs find index isalnum isalpha "  # noqa: SIM905
    "isascii isdecimal isdigit isidentifier islower isnumeric isprintable isspace istitle "
    "isupper join ljust lower lstrip partition removeprefix removesuffix replace rfind "
    "rindex rjust rpartition rsplit rstrip split splitlines startswith strip swapcase title "
    "upper zfill striptags unescape".split()
)
_ALLOWED_METHODS: dict[type, frozenset[str]] = {
    str: _STR_METHODS,
    Markup: _STR_METHODS,
    list: frozenset({"count", "index", "copy"}),
    tuple: frozenset({"count", "index"}),
    dict: frozenset({"get", "items", "keys", "values", "copy"}),
    int: frozenset({"bit_length"}),
    float: frozenset({"is_integer"}),
    bool: frozenset(),
}


class _CheckedCodeGenerator(CodeGenerator):
    """Jinja's code generator with budget checks where the generated code would not call back."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The iterables of {% for %} loops, by identity (Jinja forbids new node types).
        self._loop_iterables: dict[int, nodes.Node] = {}

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        self._loop_iterables[id(node.iter)] = node.iter
        super().visit_For(node, frame)

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        if self._loop_iterables.get(id(node)) is not node:
            return super().visit(node, *args, **kwargs)
        # Each step of a loop is charged to the budget, and looks at the clock.
        self.write("environment.counted(")
        super().visit(node, *args, **kwargs)
        self.write(")")
        return None

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self.write("environment.built(")
        super().visit_List(node, frame)
        self.write(")")

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self.write("environment.built(")
        super().visit_Dict(node, frame)
        self.write(")")

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":
            super().visit_Tuple(node, frame)
            return
        self.write("environment.built(")
        super().visit_Tuple(node, frame)
        self.write(")")

    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        if not isinstance(node.arg, nodes.Slice):
            super().visit_Getitem(node, frame)
            return
        # Slices bypass environment.getitem: "big[1:]" copies, so it is charged.
        self.write("environment.built(")
        super().visit_Getitem(node, frame)
        self.write(")")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # "a ~ b" prints and joins its parts: measured before they are joined.
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        else:
            join = "markup_join" if frame.eval_ctx.autoescape else "str_join"
        self.write(f"environment.joined({join}, (")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")

    def visit_Output(self, node: nodes.Output, frame: Frame) -> None:
        super().visit_Output(node, frame)
        if frame.buffer is not None:
            # A macro's or block's output piles up in a list until it is joined: watch it.
            self.writeline(f"environment.check_buffer({frame.buffer})")

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:
            super()._output_child_pre(node, frame, finalize)
            return
        # Without escaping, str() of a str is the str itself: nothing is built, nothing to
        # charge, so finalize is called for other values only (it runs for every {{ }}).
        self.write("str(t_out if type(t_out := (")

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:
            super()._output_child_post(node, frame, finalize)
            return
        self.write(")) is str else environment.finalize(t_out))")

    def visit_Compare(self, node: nodes.Compare, frame: Frame) -> None:
        # Comparing nested lists runs in C for as long as they are big: look at the clock first.
        self.write("(environment.check_time() or ")
        super().visit_Compare(node, frame)
        self.write(")")


class _FreshModuleTemplate(Template):
    """A template whose module is built anew each time it is imported."""

    def _get_default_module(self, ctx: Context | None = None) -> TemplateModule:
        # Jinja keeps an imported template's module between renders: what one message left in
        # it (a namespace a macro changed) would show in the next message's render.
        return self.make_module()


class SandboxEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with strict undefined names, plain data only, and a budget;
    it loads other templates only from ``library``, by the names each template pinned."""

    code_generator_class = _CheckedCodeGenerator
    template_class = _FreshModuleTemplate
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, *, autoescape: bool, library: TemplateLibrary | None = None) -> None:
        super().__init__(
            autoescape=autoescape,
            undefined=StrictUndefined,
            finalize=_finalize,
            loader=PinnedLoader(library.sources) if library is not None else None,
        )
        self.library = library
        # lipsum can generate arbitrarily long text and has no use in a campaign.
        self.globals.pop("lipsum", None)
        self.globals["range"] = _bounded_range
        self.filters = {name: checked_filter(name, f) for name, f in self.filters.items()}
        self.tests = {name: _timed(test) for name, test in self.tests.items()}  # type: ignore[arg-type]
        self.concat = _concat  # type: ignore[method-assign]

    def join_path(self, template: str, parent: str) -> str:
        # A name means what it was pinned to in the template that uses it: "footer" in a
        # layout and "footer" in a newer template may be two versions of the footer.
        if self.library is None:
            raise TemplateNotFound(template)
        return self.library.resolve(template, parent)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if type(obj) is LoopContext:
            # loop.index, loop.last...: the hot path; the loop has no other attributes.
            return not attr.startswith("_")
        allowed = _ALLOWED_METHODS.get(type(obj))
        if allowed is not None and attr not in allowed and callable(value):
            return False
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> None:
        # str.format reaches attributes by name and pads without limit; the format filter
        # ("%s"|format(...)) is there instead.
        return None

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        budget = current_budget()
        if operator_ == "*":
            check_product_size(left, right)
            check_product_size(right, left)
            result = operator.mul(left, right)
        elif operator_ == "**":
            check_power_size(left, right)
            return operator.pow(left, right)
        elif operator_ == "+":
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                budget.check_fits(
                    printed_size(left, budget.memory_left) + printed_size(right, budget.memory_left)
                )
            result = operator.add(left, right)
        elif isinstance(left, str):  # "%"
            printed_size(right, budget.memory_left, plain_only=True)
            check_printf(left, right)
            result = left % right
        else:
            return operator.mod(left, right)
        if isinstance(result, str | list | tuple):
            budget.spend_memory(printed_size(result, budget.memory_left))
        return result

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        budget.check_time()
        if not __self.is_safe_callable(__obj):
            raise SecurityError(f"{__obj!r} is not safely callable")
        if isinstance(__obj, LoopContext) and args:
            # loop(children) in a recursive loop: its steps count like any other loop's.
            args = (budget.counted(args[0]), *args[1:])
        elif isinstance(getattr(__obj, "__self__", None), str):
            args = check_str_method(__obj.__name__, __obj.__self__, args)
        result = __context.call(__obj, *args, **kwargs)
        if not isinstance(__obj, Macro | LoopContext | BlockReference):
            # The output of macros, loops and blocks was charged as it was joined.
            budget.spend_memory(printed_size(result, budget.memory_left))
        return result

    def counted(self, iterable: Iterable[Any]) -> Iterator[Any]:
        return current_budget().counted(iterable)

    def built(self, value: Any) -> Any:
        """Charge a list, tuple or dict the template writes out (``[a, a, a]``)."""
        budget = current_budget()
        budget.spend_memory(printed_size(value, budget.memory_left))
        return value

    def joined(self, join: Callable[[Iterable[Any]], str], parts: tuple[Any, ...]) -> str:
        budget = current_budget()
        left = budget.memory_left
        budget.spend_memory(sum(printed_size(part, left, plain_only=True) for part in parts))
        return join(parts)

    def check_time(self) -> None:
        current_budget().check_time()

    def check_buffer(self, buffer: list[str]) -> None:
        """The pieces of a macro's or block's output so far: each costs a list slot."""
        budget = current_budget()
        budget.check_fits(len(buffer) * 8)
        budget.check_time()


def _finalize(value: Any) -> Any:
    """Every {{ value }}: charged before it is printed (or escaped into a new string)."""
    kind = type(value)
    if kind is str:
        # spend_memory inlined: this runs for every {{ }} of every message.
        budget = running_budget.get() or current_budget()
        budget.memory_left -= len(value)
        if budget.memory_left >= 0:
            return value
        budget.spend_memory(0)  # raises
    if kind in _SMALL_TYPES:
        return value
    budget = current_budget()
    budget.spend_memory(printed_size(value, budget.memory_left, plain_only=True))
    return value


_SMALL_TYPES = frozenset({int, float, bool, type(None)})  # at most MAX_NUMBER_BITS


def _concat(parts: Iterable[str]) -> str:
    """Join a macro's or block's output, measured first."""
    parts = list(parts)
    current_budget().spend_memory(sum(map(len, parts)))
    return "".join(parts)


def _bounded_range(*args: int) -> range:
    """range() that is refused when it is longer than the loop steps the render has left."""
    steps = range(*args)
    budget = current_budget()
    if len(steps) > budget.iterations_left:
        raise LimitExceeded(
            "iterations", f"range() of {len(steps)} is more than the loop steps left"
        )
    return steps


def _timed(test: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(test)
    def timed_test(*args: Any, **kwargs: Any) -> Any:
        current_budget().check_time()
        return test(*args, **kwargs)

    return timed_test
