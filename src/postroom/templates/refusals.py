"""What the sandbox refuses, found statically so that the tenant sees it at upload with its
line: private names, ``str.format``, and templates loaded other than by a pinned name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from jinja2 import nodes

# Filters that look attributes up by a name given as a string argument.
_ATTRIBUTE_FILTERS = frozenset(
    {"attr", "map", "select", "selectattr", "reject", "rejectattr", "sort", "groupby", "sum"}
    | {"unique", "min", "max"}
)
_LOADING_TAGS: dict[type[nodes.Node], str] = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from ... import",
    nodes.Extends: "extends",
}


def find_refusals(
    tree: nodes.Template,
    *,
    part: str,
    pins: Mapping[str, str],
    unusable: Mapping[str, str],
) -> Iterator[tuple[int | None, str]]:
    """Yield (line, reason) for every construct the sandbox would refuse.

    ``pins`` are the names of templates this one may load (extends, include, import), and
    ``unusable`` why other names it uses cannot be loaded. The sandbox still guards at render
    time; this check only makes the refusal visible when the template is saved.
    """
    for node in tree.find_all(nodes.Node):
        keyword = _LOADING_TAGS.get(type(node))
        if keyword is not None:
            reason = _loading_refusal(node, keyword, part, pins, unusable)
            if reason is not None:
                yield node.lineno, reason
        for name in _names_used(node):
            if name.startswith("_") or "._" in name:
                yield node.lineno, f"'{name}' cannot be used: names starting with '_' are private"
        if isinstance(node, nodes.Getattr) and node.attr in ("format", "format_map"):
            yield node.lineno, f"'.{node.attr}()' cannot be used: use the format filter"


def _loading_refusal(
    node: nodes.Node,
    keyword: str,
    part: str,
    pins: Mapping[str, str],
    unusable: Mapping[str, str],
) -> str | None:
    if part != "html":
        return f"{{% {keyword} %}} cannot be used in the {part}: only in the HTML"
    if getattr(node, "ignore_missing", False):
        return "'ignore missing' cannot be used: every template a template loads must exist"
    name = getattr(node, "template", None)
    if not isinstance(name, nodes.Const) or not isinstance(name.value, str):
        # The templates a template loads are resolved and pinned at upload: known statically.
        return f'{{% {keyword} %}} takes one template name in quotes, such as "footer"'
    if name.value in pins:
        return None
    return unusable.get(name.value, f"there is no template {name.value!r}")


def _names_used(node: nodes.Node) -> Iterator[str]:
    """The attribute, item and variable names a node refers to by a constant string."""
    if isinstance(node, nodes.Name):
        yield node.name
    elif isinstance(node, nodes.Getattr | nodes.NSRef):
        yield node.attr
    elif isinstance(node, nodes.Getitem):
        if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            yield node.arg.value
    elif isinstance(node, nodes.Filter) and node.name in _ATTRIBUTE_FILTERS:
        arguments = [*node.args, *(keyword.value for keyword in node.kwargs)]
        for argument in arguments:
            if isinstance(argument, nodes.Const) and isinstance(argument.value, str):
                yield argument.value


def bound_names(tree: nodes.Template) -> set[str]:
    """The names a template sets anywhere ({% set %}, loop targets, macro arguments, imports): a
    template it includes or extends may use them without them being fields of the row."""
    stored = {node.name for node in tree.find_all(nodes.Name) if node.ctx in ("store", "param")}
    return stored | top_level_names(tree)


# Tags whose names stay inside them.
_SCOPES = (
    nodes.For,
    nodes.Macro,
    nodes.CallBlock,
    nodes.Block,
    nodes.FilterBlock,
    nodes.With,
    nodes.Scope,
    nodes.OverlayScope,
)


def top_level_names(tree: nodes.Template) -> set[str]:
    """The names a template sets outside any loop, macro or block: the render's context keeps
    them, so its blocks see them (Jinja's meta counts them as fields there)."""
    names: set[str] = set()
    pending = list(tree.iter_child_nodes())
    while pending:
        node = pending.pop()
        if isinstance(node, nodes.Name) and node.ctx == "store":
            names.add(node.name)
        elif isinstance(node, nodes.Import):
            names.add(node.target)
        elif isinstance(node, nodes.FromImport):
            names |= {name if isinstance(name, str) else name[1] for name in node.names}
        elif isinstance(node, nodes.Macro):
            names.add(node.name)
        if not isinstance(node, _SCOPES):
            pending += node.iter_child_nodes()
    return names
