"""A template's library: the tenant's own templates it extends, includes or imports, pinned to
their ids when it is uploaded, and the Jinja loader that serves those templates and no other."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from jinja2 import BaseLoader, Environment, TemplateNotFound, meta

TEMPLATE_ID_PREFIX = "tpl_"
#: How many templates deep a chain may go (a template, its layout, the layout's partial...).
MAX_DEPTH = 5
#: How many templates one template may load in all, its dependencies' dependencies included.
MAX_TEMPLATES = 32


@dataclass(frozen=True, slots=True)
class Candidate:
    """One of the tenant's templates that a name in a template might stand for."""

    id: str
    name: str
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TemplateLibrary:
    """What the template ``root_id`` may load.

    ``pins`` gives, for the root and for each template it loads, the template id each name
    it uses was pinned to; ``sources`` the HTML of those templates by id; ``unusable`` why a
    name the root uses was not pinned; ``labels`` how problems name a template.
    """

    root_id: str
    pins: Mapping[str, Mapping[str, str]]
    sources: Mapping[str, str] = field(default_factory=dict)
    unusable: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)

    def resolve(self, name: str, parent: str) -> str:
        """The id of the template ``name`` stands for in the template ``parent``."""
        pinned = self.pins.get(parent, {}).get(name)
        if pinned is None or pinned not in self.sources:
            raise TemplateNotFound(name)
        return pinned

    def label(self, template_id: str) -> str:
        return self.labels.get(template_id, template_id)


class PinnedLoader(BaseLoader):
    """Serves a library's sources by template id: no file, no other tenant's template.

    The environment maps the names a template uses to ids (``SandboxEnvironment.join_path``);
    this loader knows nothing but the sources it was given.
    """

    def __init__(self, sources: Mapping[str, str]) -> None:
        self._sources = dict(sources)

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool]]:
        source = self._sources.get(template)
        if source is None:
            raise TemplateNotFound(template)
        return source, None, _always_current


def _always_current() -> bool:
    return True  # templates never change once uploaded


def referenced_names(source: str) -> list[str]:
    """The template names a source quotes in extends, include and import tags, in order,
    once each; a source that does not parse names none (the check reports why)."""
    try:
        tree = Environment(autoescape=True).parse(source)  # parsed, never rendered
    except Exception:
        return []
    found = (name for name in meta.find_referenced_templates(tree) if name is not None)
    return list(dict.fromkeys(found))


def pin_names(
    names: list[str], candidates: Iterable[Candidate], *, own_id: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Pin each name to a template id: a ``tpl_…`` id to that template, any other name to the
    most recent ``ready`` template of that name. ``candidates`` are the tenant's templates
    whose id or name is among the first MAX_TEMPLATES ``names``; returns (pins, why each
    other name is unusable)."""
    by_id: dict[str, Candidate] = {}
    newest_ready: dict[str, Candidate] = {}
    for candidate in candidates:
        by_id[candidate.id] = candidate
        best = newest_ready.get(candidate.name)
        newer = best is None or (candidate.created_at, candidate.id) > (best.created_at, best.id)
        if candidate.status == "ready" and newer:
            newest_ready[candidate.name] = candidate
    pins: dict[str, str] = {}
    unusable: dict[str, str] = {}
    for index, name in enumerate(names):
        if index >= MAX_TEMPLATES:
            unusable[name] = f"a template may load at most {MAX_TEMPLATES} others"
        elif name == own_id:
            unusable[name] = "a template cannot load itself"
        elif name.startswith(TEMPLATE_ID_PREFIX):
            found = by_id.get(name)
            if found is None:
                unusable[name] = f"there is no template {name!r}"
            elif found.status != "ready":
                unusable[name] = f"the template {name!r} is {found.status}, not ready"
            else:
                pins[name] = name
        elif name in newest_ready:
            pins[name] = newest_ready[name].id
        else:
            unusable[name] = f"there is no ready template named {name!r}"
    return pins, unusable


def gather_pins(
    root_id: str,
    root_pins: Mapping[str, str],
    read_pins: Callable[[list[str]], Mapping[str, Mapping[str, str]]],
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Follow pins from the root, a level at a time, to every template it loads.

    ``read_pins`` gives the pins of templates by id (an id it leaves out is missing). At most
    MAX_DEPTH + 1 levels and MAX_TEMPLATES templates are read. Returns the pins found (the
    root's included) and, for each name the root uses, why it cannot be used: it leads back
    to itself, goes deeper than MAX_DEPTH, loads too many templates, or is missing.
    """
    pins: dict[str, dict[str, str]] = {root_id: dict(root_pins)}
    missing: set[str] = set()
    level = set(root_pins.values())
    unread = f"templates may nest at most {MAX_DEPTH} deep"
    for _ in range(MAX_DEPTH + 1):
        wanted = sorted(level - pins.keys() - missing)
        if len(pins) + len(missing) > MAX_TEMPLATES + 1:
            unread = f"a template may load at most {MAX_TEMPLATES} others"
            break
        if not wanted:
            break
        found = read_pins(wanted)
        read = {
            template_id: dict(found[template_id]) for template_id in wanted if template_id in found
        }
        missing |= set(wanted) - read.keys()
        pins |= read
        level = {target for targets in read.values() for target in targets.values()}
    unusable = _unusable_names(root_id, pins, missing, unread)
    pins[root_id] = {name: target for name, target in root_pins.items() if name not in unusable}
    return pins, unusable


def _unusable_names(
    root_id: str, pins: Mapping[str, Mapping[str, str]], missing: set[str], unread: str
) -> dict[str, str]:
    unusable: dict[str, str] = {}
    depths: dict[str, int] = {}
    for name, target in pins[root_id].items():
        try:
            depth = 1 + _depth(target, _Walk(pins, missing, unread, depths), [root_id])
        except _Unusable as exc:
            unusable[name] = exc.reason
            continue
        if depth > MAX_DEPTH:
            unusable[name] = f"templates may nest at most {MAX_DEPTH} deep"
    loaded = len(pins) + len(missing) - 1
    if loaded > MAX_TEMPLATES and pins[root_id]:
        first = next(iter(pins[root_id]))
        unusable.setdefault(first, f"a template may load at most {MAX_TEMPLATES} others")
    return unusable


class _Unusable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Walk:
    pins: Mapping[str, Mapping[str, str]]
    missing: set[str]
    unread: str  # why a template the walk did not read cannot be used
    depths: dict[str, int]


def _depth(template_id: str, walk: _Walk, path: list[str]) -> int:
    """How many levels of templates ``template_id`` loads below itself."""
    if template_id in path:
        chain = " → ".join([*path[path.index(template_id) :], template_id])
        raise _Unusable(f"templates load each other in a circle: {chain}")
    if template_id in walk.depths:
        return walk.depths[template_id]
    if template_id in walk.missing:
        raise _Unusable(f"the template {template_id!r} is missing")
    if template_id not in walk.pins:
        raise _Unusable(walk.unread)
    below = [
        1 + _depth(target, walk, [*path, template_id]) for target in walk.pins[template_id].values()
    ]
    walk.depths[template_id] = max(below, default=0)
    return walk.depths[template_id]


def reachable(root_id: str, pins: Mapping[str, Mapping[str, str]]) -> list[str]:
    """The ids of the templates the root loads, directly or through others, in the order met."""
    found: dict[str, None] = {}
    level = list(pins.get(root_id, {}).values())
    while level:
        new = [template_id for template_id in dict.fromkeys(level) if template_id not in found]
        found |= dict.fromkeys(new)
        level = [target for template_id in new for target in pins.get(template_id, {}).values()]
    found.pop(root_id, None)
    return list(found)
