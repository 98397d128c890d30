"""The template sandbox: checks, compiles and renders campaign templates without trusting them."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

from jinja2 import Template, meta, nodes

from postroom.errors import PostroomError
from postroom.templates.environment import SandboxEnvironment
from postroom.templates.library import TemplateLibrary
from postroom.templates.limits import (
    LimitExceeded,
    RenderBudget,
    RenderLimits,
    end_budget,
    start_budget,
)
from postroom.templates.plaintext import html_to_text
from postroom.templates.refusals import bound_names, find_refusals, top_level_names

DEFAULT_MAX_BYTES = 512 * 1024

# Anything that would end the Subject header line or hide inside it; see _one_line.
_CONTROL = "\x00-\x1f\x7f-\x9f\u2028\u2029"
_HAS_CONTROL = re.compile(f"[{_CONTROL}]")
_SPACE_OR_CONTROL_RUN = re.compile(rf"[\s{_CONTROL}]+")


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    """One reason a template cannot be used; ``part`` is "html" or "subject"."""

    line: int | None
    message: str
    part: str


@dataclass(frozen=True, slots=True)
class TemplateCheck:
    is_valid: bool
    variables: list[str]
    problems: list[TemplateProblem]


@dataclass(frozen=True, slots=True)
class RenderedContent:
    subject: str
    html: str
    text: str


class TemplateInvalid(PostroomError):
    """A template that fails check_template; ``details["problems"]`` says why."""

    code = "template_invalid"
    status = 422


class RenderError(PostroomError):
    """A message could not be rendered: a missing field, a sandbox violation or any failure."""

    code = "render_error"
    status = 422


class RenderLimitExceeded(RenderError):
    """A message went over a render limit; ``details["limit"]`` names which one."""

    code = "render_limit"


_BLANK_LINE_RUNS = re.compile(r"\n(?:[ \t]*\n){2,}")


class CompiledTemplate:
    """A template version compiled once and rendered for every message of a campaign."""

    __slots__ = ("_html", "_subject", "_text", "limits", "variables")

    def __init__(
        self,
        html: Template,
        subject: Template,
        variables: list[str],
        text: Template | None = None,
        limits: RenderLimits | None = None,
    ) -> None:
        self._html = html
        self._subject = subject
        self._text = text
        self.variables = variables
        self.limits = limits or RenderLimits()

    def render(self, fields: Mapping[str, str]) -> RenderedContent:
        """Render subject, HTML and the derived text within the limits; raise
        RenderLimitExceeded (code "render_limit") past one, RenderError on any other failure."""
        budget, token = start_budget(self.limits)
        try:
            content = self._render(fields, budget)
        finally:
            end_budget(token)
        size = sum(map(_utf8_size, (content.subject, content.html, content.text)))
        if size > self.limits.max_bytes:
            detail = f"the message is larger than {self.limits.max_bytes} bytes"
            raise _limit_error(LimitExceeded("rendered_size", detail), "html")
        return content

    def _render(self, fields: Mapping[str, str], budget: RenderBudget) -> RenderedContent:
        subject = _one_line(_render_part(self._subject, fields, "subject", budget))
        html = _render_part(self._html, fields, "html", budget)
        if self._text is not None:
            # Block tags ({% for %}...) between elements leave blank lines of their own.
            text = _render_part(self._text, fields, "text", budget)
            text = _BLANK_LINE_RUNS.sub("\n\n", text)
            return RenderedContent(subject=subject, html=html, text=text.lstrip("\n"))
        try:
            text = html_to_text(html)
            budget.write(len(text))
        except LimitExceeded as exc:
            raise _limit_error(exc, "text") from None
        except Exception as exc:
            raise RenderError(
                f"the text part could not be derived: {exc}", details={"part": "html"}
            ) from exc
        return RenderedContent(subject=subject, html=html, text=text)


class TemplateCache:
    """Compiled templates by version key (such as a sha256 of the sources), least recent out."""

    def __init__(self, max_entries: int = 256, limits: RenderLimits | None = None) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.limits = limits
        self._entries: OrderedDict[str, CompiledTemplate] = OrderedDict()
        # Sender threads may share one cache; compiling happens outside the lock.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get_or_compile(
        self, key: str, html: str, subject: str, library: TemplateLibrary | None = None
    ) -> CompiledTemplate:
        """Return the template compiled for ``key``, compiling and keeping it on a miss.

        The caller guarantees that ``key`` identifies exactly this html and subject and the
        templates of ``library`` (see PinnedTemplate.version_key).
        """
        with self._lock:
            compiled = self._entries.get(key)
            if compiled is not None:
                self._entries.move_to_end(key)
                return compiled
        compiled = compile_template(html, subject, limits=self.limits, library=library)
        with self._lock:
            self._entries[key] = compiled
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return compiled


def check_template(
    html: str,
    subject: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    limits: RenderLimits | None = None,
    library: TemplateLibrary | None = None,
) -> TemplateCheck:
    """Say whether a template can be used, which fields it needs, and what is wrong with it.

    The HTML may load the templates of ``library`` by the names pinned for it; the fields it
    needs include theirs. A template that goes over a render limit with every field empty
    would go over it for every message: it is invalid, with the limit named.
    """
    html_template, subject_template, check = _examine(html, subject, max_bytes, library)
    if html_template is None or subject_template is None:
        return check
    text_template = _text_template(html, check.variables, library)
    compiled = CompiledTemplate(
        html_template, subject_template, check.variables, text_template, limits
    )
    try:
        compiled.render(dict.fromkeys(check.variables, ""))
    except RenderLimitExceeded as exc:
        problem = TemplateProblem(None, exc.message, exc.details["part"])
        return TemplateCheck(is_valid=False, variables=check.variables, problems=[problem])
    except RenderError:
        pass  # other data may well render: a missing field or a bad value is the data's fault
    return check


def compile_template(
    html: str,
    subject: str,
    *,
    max_bytes: int | None = None,
    limits: RenderLimits | None = None,
    library: TemplateLibrary | None = None,
) -> CompiledTemplate:
    """Compile a template for rendering; raise TemplateInvalid (code "template_invalid") if it
    fails check_template.

    The size limit is an upload rule applied by check_template with the configured limit; it
    is only applied here when ``max_bytes`` is given, so a template accepted then still
    compiles later.
    """
    html_template, subject_template, check = _examine(html, subject, max_bytes, library)
    if html_template is None or subject_template is None:
        first = check.problems[0]
        where = f" (line {first.line})" if first.line is not None else ""
        raise TemplateInvalid(
            f"the {first.part} template is invalid{where}: {first.message}",
            details={"problems": [_problem_body(problem) for problem in check.problems]},
        )
    text_template = _text_template(html, check.variables, library)
    return CompiledTemplate(html_template, subject_template, check.variables, text_template, limits)


def _text_template(
    html: str, variables: list[str], library: TemplateLibrary | None
) -> Template | None:
    """The text part as a template of its own, derived once from the HTML source.

    Converting HTML to text for every message costs more than everything else a send does;
    converting the template once and rendering the result (without autoescaping) gives the
    same text. When the conversion would disturb the template's own tags (its variables or
    its compilation change), None is returned and each rendered message is converted.
    """
    if library is not None and library.pins.get(library.root_id):
        return None  # the templates it loads are HTML: the whole is converted message by message
    try:
        source = html_to_text(html)
    except Exception:
        return None
    environment = SandboxEnvironment(autoescape=False)
    environment.keep_trailing_newline = True  # html_to_text ends its text with one newline
    text, text_variables, problems = _examine_part("text", source, environment, None)
    if text is None or problems or not text_variables <= set(variables):
        return None
    if any(source.count(mark) != html.count(mark) for mark in ("{{", "}}", "{%", "%}")):
        return None  # a tag sat somewhere the conversion drops (a <style>, an attribute)
    return text


def _examine(
    html: str, subject: str, max_bytes: int | None, library: TemplateLibrary | None
) -> tuple[Template | None, Template | None, TemplateCheck]:
    html_template, html_variables, html_problems = _examine_part(
        "html", html, SandboxEnvironment(autoescape=True, library=library), max_bytes
    )
    subject_template, subject_variables, subject_problems = _examine_part(
        "subject", subject, SandboxEnvironment(autoescape=False), max_bytes
    )
    problems = html_problems + subject_problems
    check = TemplateCheck(
        is_valid=not problems,
        variables=sorted(html_variables | subject_variables),
        problems=problems,
    )
    return html_template, subject_template, check


def _examine_part(
    part: str, source: str, environment: SandboxEnvironment, max_bytes: int | None
) -> tuple[Template | None, set[str], list[TemplateProblem]]:
    """Parse, vet and compile one part; the template is None whenever there are problems."""
    size_bytes = len(source.encode("utf-8", "surrogatepass"))
    if max_bytes is not None and size_bytes > max_bytes:
        message = f"the template is {size_bytes} bytes, more than the limit of {max_bytes}"
        return None, set(), [TemplateProblem(None, message, part)]
    try:
        tree = environment.parse(source)
        variables = _fields_used(tree, source, environment)
    except Exception as exc:
        return None, set(), [_problem_from_exception(exc, part)]
    library = environment.library
    pins = library.pins.get(library.root_id, {}) if library is not None else {}
    unusable = library.unusable if library is not None else {}
    refusals = find_refusals(tree, part=part, pins=pins, unusable=unusable)
    problems = [TemplateProblem(line, message, part) for line, message in refusals]
    if library is not None and pins and not problems:
        loaded_variables, problems = _examine_library(environment, library)
        variables |= loaded_variables - bound_names(tree)
    if problems:
        return None, variables, problems
    try:
        # Named by its id: the names it loads templates by are looked up in its own pins.
        name = library.root_id if library is not None else None
        code = environment.compile(tree, name=name)
        globals_ = environment.make_globals(None)
        template = environment.template_class.from_code(environment, code, globals_, None)
        return template, variables, []
    except Exception as exc:
        return None, variables, [_problem_from_exception(exc, part)]


def _examine_library(
    environment: SandboxEnvironment, library: TemplateLibrary
) -> tuple[set[str], list[TemplateProblem]]:
    """The fields the templates a template loads use (less the names each of them sets for
    the templates it loads in turn), and what is wrong with them, if anything."""
    found: dict[str, set[str]] = {}
    problems: list[TemplateProblem] = []

    def visit(template_id: str) -> set[str]:
        if template_id in found:
            return found[template_id]
        found[template_id] = set()  # a circle stops here (and was refused when pinned)
        label = library.label(template_id)
        if template_id not in library.sources:
            problems.append(_problem_in(label, None, "the template is missing"))
            return set()
        try:
            source = library.sources[template_id]
            tree = environment.parse(source)
            variables = _fields_used(tree, source, environment)
        except Exception as exc:
            problem = _problem_from_exception(exc, "html")
            problems.append(_problem_in(label, problem.line, problem.message))
            return set()
        pins = library.pins.get(template_id, {})
        for line, message in find_refusals(tree, part="html", pins=pins, unusable={}):
            problems.append(_problem_in(label, line, message))
        for target in dict.fromkeys(pins.values()):
            variables |= visit(target) - bound_names(tree)
        found[template_id] = variables
        return variables

    variables: set[str] = set()
    for target in dict.fromkeys(library.pins[library.root_id].values()):
        variables |= visit(target)
    return variables, problems


def _fields_used(tree: nodes.Template, source: str, environment: SandboxEnvironment) -> set[str]:
    """The fields of the row a template uses: the names it uses and does not set itself."""
    # Finding the variables runs the code generator, which rejects e.g. unknown filters.
    variables = set(meta.find_undeclared_variables(tree)) - set(environment.globals)
    if not any(True for _ in tree.find_all(nodes.Block)):
        return variables
    # Jinja counts every name a block uses as a field, but a block sees what the template
    # set outside it ({% set title %} before a layout's blocks render); what the template
    # uses before setting it, outside blocks, stays a field.
    outside = environment.parse(source)
    for block in outside.find_all(nodes.Block):
        block.body = []
    used_outside = set(meta.find_undeclared_variables(outside)) - set(environment.globals)
    return used_outside | (variables - top_level_names(tree))


def _problem_in(label: str, line: int | None, message: str) -> TemplateProblem:
    where = f", line {line}" if line is not None else ""
    return TemplateProblem(None, f"in {label}{where}: {message}", "html")


def _problem_from_exception(exc: Exception, part: str) -> TemplateProblem:
    line = getattr(exc, "lineno", None)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return TemplateProblem(line if isinstance(line, int) else None, message, part)


def _problem_body(problem: TemplateProblem) -> dict[str, Any]:
    return {"line": problem.line, "message": problem.message, "part": problem.part}


def _render_part(
    template: Template, fields: Mapping[str, str], part: str, budget: RenderBudget
) -> str:
    """Render one part, counting its output as it is written (Template.render, measured)."""
    chunks: list[str] = []
    try:
        stream = template.root_render_func(template.new_context(dict(fields)))
        # Collected a slice at a time (references to the template's text, or values already
        # charged), measured, and joined into one string only once the whole fits.
        while batch := list(islice(stream, _CHUNKS_PER_CHECK)):
            budget.write(sum(map(len, batch)))
            chunks += batch
    except LimitExceeded as exc:
        raise _limit_error(exc, part) from None
    except RecursionError:
        exceeded = LimitExceeded("recursion", "macros or loops call themselves too deeply")
        raise _limit_error(exceeded, part) from None
    except MemoryError:
        raise _limit_error(LimitExceeded("memory", "the render ran out of memory"), part) from None
    except Exception as exc:
        # Whatever went wrong, the message must not go out half-rendered.
        raise RenderError(
            f"the {part} could not be rendered: {exc}",
            details={"part": part, "reason": type(exc).__name__},
        ) from exc
    return "".join(chunks)


_CHUNKS_PER_CHECK = 1024


def _limit_error(exc: LimitExceeded, part: str) -> RenderLimitExceeded:
    return RenderLimitExceeded(
        f"{exc.limit}: {exc.detail} (in the {part})",
        details={"part": part, "limit": exc.limit},
    )


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _one_line(subject: str) -> str:
    """Collapse each run of control characters (and the spaces around it) to one space."""
    if subject.isprintable():
        return subject.strip()
    return _SPACE_OR_CONTROL_RUN.sub(_collapse_if_control, subject).strip()


def _collapse_if_control(run: re.Match[str]) -> str:
    text = run.group()
    return " " if _HAS_CONTROL.search(text) else text
