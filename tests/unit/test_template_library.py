"""Layouts and partials: names pinned among the tenant's own templates, the loader that serves
only what was pinned, and the sandbox's checks and limits across the templates one loads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from jinja2 import TemplateNotFound

from postroom.templates.environment import SandboxEnvironment
from postroom.templates.library import (
    MAX_DEPTH,
    MAX_TEMPLATES,
    Candidate,
    PinnedLoader,
    TemplateLibrary,
    gather_pins,
    pin_names,
    reachable,
    referenced_names,
)
from postroom.templates.limits import RenderLimits
from postroom.templates.sandbox import (
    RenderLimitExceeded,
    TemplateProblem,
    check_template,
    compile_template,
)

T0 = datetime(2026, 11, 30, tzinfo=UTC)
FIELDS = {"first_name": "Ann", "email": "ann@example.com", "unsubscribe_url": "https://u/1"}


def library(root_pins: dict[str, str], **templates: tuple[str, dict[str, str]]) -> TemplateLibrary:
    """A library rooted at "tpl_root": each keyword is a template id with (source, pins)."""
    pins = {"tpl_root": root_pins} | {key: value[1] for key, value in templates.items()}
    sources = {key: value[0] for key, value in templates.items()}
    return TemplateLibrary(root_id="tpl_root", pins=pins, sources=sources)


# Pinning names among the tenant's templates


def test_a_name_is_pinned_to_the_most_recent_ready_template_of_that_name() -> None:
    candidates = [
        Candidate("tpl_old", "footer", "ready", T0),
        Candidate("tpl_new", "footer", "ready", T0 + timedelta(hours=1)),
        Candidate("tpl_newest", "footer", "invalid", T0 + timedelta(hours=2)),
        Candidate("tpl_later", "footer", "pending_upload", T0 + timedelta(hours=3)),
    ]
    pins, unusable = pin_names(["footer"], candidates, own_id="tpl_me")
    assert pins == {"footer": "tpl_new"} and unusable == {}


def test_an_id_is_pinned_to_that_template_when_it_is_ready() -> None:
    candidates = [
        Candidate("tpl_a", "a", "ready", T0),
        Candidate("tpl_p", "p", "pending_upload", T0),
        Candidate("tpl_i", "i", "invalid", T0),
    ]
    names = ["tpl_a", "tpl_p", "tpl_i", "tpl_elsewhere", "nothing", "tpl_me"]
    pins, unusable = pin_names(names, candidates, own_id="tpl_me")
    assert pins == {"tpl_a": "tpl_a"}
    assert unusable == {
        "tpl_p": "the template 'tpl_p' is pending_upload, not ready",
        "tpl_i": "the template 'tpl_i' is invalid, not ready",
        # Another tenant's id is never among the candidates: it reads like one that never was.
        "tpl_elsewhere": "there is no template 'tpl_elsewhere'",
        "nothing": "there is no ready template named 'nothing'",
        "tpl_me": "a template cannot load itself",
    }


def test_a_name_that_looks_like_an_id_is_only_an_id() -> None:
    pins, unusable = pin_names(
        ["tpl_x"], [Candidate("tpl_real", "tpl_x", "ready", T0)], own_id="tpl_me"
    )
    assert pins == {} and "tpl_x" in unusable


def test_a_template_names_at_most_max_templates_others() -> None:
    names = [f"n{index}" for index in range(MAX_TEMPLATES + 2)]
    candidates = [Candidate(f"tpl_{name}", name, "ready", T0) for name in names]
    pins, unusable = pin_names(names, candidates, own_id="tpl_me")
    assert len(pins) == MAX_TEMPLATES
    assert set(unusable) == set(names[MAX_TEMPLATES:])


def test_referenced_names_are_the_quoted_ones_once_each() -> None:
    source = (
        "{% extends 'base' %}{% include 'footer' %}{% include 'footer' %}"
        "{% import 'macros' as m %}{% from 'tpl_x' import f %}{% include name %}"
    )
    assert referenced_names(source) == ["base", "footer", "macros", "tpl_x"]
    assert referenced_names("{% include 'a' ") == []


# Following pins: circles, depth, size


def chain(length: int) -> dict[str, dict[str, str]]:
    """t1 loads t2, t2 loads t3... t<length> loads nothing."""
    return {f"t{n}": ({"next": f"t{n + 1}"} if n < length else {}) for n in range(1, length + 1)}


def test_chains_up_to_max_depth_are_followed() -> None:
    stored = chain(MAX_DEPTH)
    pins, unusable = gather_pins("root", {"first": "t1"}, lambda ids: {i: stored[i] for i in ids})
    assert unusable == {}
    assert reachable("root", pins) == [f"t{n}" for n in range(1, MAX_DEPTH + 1)]


def test_a_chain_deeper_than_max_depth_is_refused_and_not_read_to_its_end() -> None:
    stored = chain(50)
    asked: list[str] = []

    def read_pins(ids: list[str]) -> dict[str, dict[str, str]]:
        asked.extend(ids)
        return {template_id: stored[template_id] for template_id in ids}

    pins, unusable = gather_pins("root", {"first": "t1"}, read_pins)
    assert unusable == {"first": f"templates may nest at most {MAX_DEPTH} deep"}
    assert pins["root"] == {}
    assert len(asked) == MAX_DEPTH + 1


def test_circles_are_refused() -> None:
    stored = {"a": {"b": "b"}, "b": {"a": "a"}, "c": {}}
    pins, unusable = gather_pins(
        "root", {"a": "a", "c": "c"}, lambda ids: {i: stored[i] for i in ids}
    )
    assert unusable == {"a": "templates load each other in a circle: a → b → a"}
    assert pins["root"] == {"c": "c"}
    # ...back to the root itself too.
    _, unusable = gather_pins("root", {"a": "a"}, lambda ids: {"a": {"root": "root"}})
    assert unusable == {"a": "templates load each other in a circle: root → a → root"}


def test_missing_templates_and_too_many_are_refused() -> None:
    _, unusable = gather_pins("root", {"gone": "tpl_gone"}, lambda ids: {})
    assert unusable == {"gone": "the template 'tpl_gone' is missing"}
    wide = {f"n{index}": f"t{index}" for index in range(MAX_TEMPLATES)}
    stored = {f"t{index}": {"x": f"x{index}"} for index in range(MAX_TEMPLATES)}
    stored |= {f"x{index}": {} for index in range(MAX_TEMPLATES)}
    _, unusable = gather_pins("root", wide, lambda ids: {i: stored[i] for i in ids})
    assert f"at most {MAX_TEMPLATES} others" in next(iter(unusable.values()))


# The loader and the environment


def test_the_loader_serves_only_its_sources() -> None:
    loader = PinnedLoader({"tpl_a": "A"})
    environment = SandboxEnvironment(autoescape=True)
    assert loader.get_source(environment, "tpl_a")[0] == "A"
    for name in ("tpl_b", "../tpl_a", "/etc/passwd", "a"):
        with pytest.raises(TemplateNotFound):
            loader.get_source(environment, name)


def test_a_name_means_what_the_template_using_it_pinned() -> None:
    # The layout pinned the first footer; the newer template pinned the second one.
    pinned = library(
        {"base": "tpl_base", "footer": "tpl_footer2"},
        tpl_base=("[{% block body %}{% endblock %}|{% include 'footer' %}]", {"footer": "tpl_f1"}),
        tpl_f1=("footer one", {}),
        tpl_footer2=("footer two", {}),
    )
    html = "{% extends 'base' %}{% block body %}{% include 'footer' %}{% endblock %}"
    content = compile_template(html, "s", library=pinned).render(FIELDS)
    assert content.html == "[footer two|footer one]"


def test_an_id_in_the_library_that_a_template_did_not_pin_is_not_found() -> None:
    pinned = library({"a": "tpl_a"}, tpl_a=("{% include 'tpl_b' %}", {}), tpl_b=("B", {}))
    check = check_template("{% include 'a' %}", "s", library=pinned)
    assert check.problems == [
        TemplateProblem(None, "in tpl_a, line 1: there is no template 'tpl_b'", "html")
    ]
    # ...and at render time, whatever the static check missed, the environment refuses too.
    environment = SandboxEnvironment(autoescape=True, library=pinned)
    assert environment.join_path("a", "tpl_root") == "tpl_a"
    for name, parent in (("tpl_b", "tpl_a"), ("tpl_b", "tpl_root"), ("a", "tpl_a")):
        with pytest.raises(TemplateNotFound):
            environment.join_path(name, parent)
    with pytest.raises(TemplateNotFound):
        SandboxEnvironment(autoescape=True).join_path("a", "tpl_root")


# Checking a template with what it loads


def test_variables_include_those_of_the_templates_loaded() -> None:
    pinned = library(
        {"base": "tpl_base", "row": "tpl_row"},
        tpl_base=(
            "<h1>{{ title }}</h1>{% block c %}{% endblock %}{% include 'foot' %}",
            {"foot": "tpl_foot"},
        ),
        tpl_foot=("<p>{{ email }} {{ plan }}</p>", {}),
        tpl_row=("<li>{{ item }}</li>", {}),
    )
    html = (
        "{% extends 'base' %}{% set title = 'Hi' %}{% import 'row' as r %}"
        "{% block c %}{{ first_name }}{% for item in items %}{% include 'row' %}{% endfor %}"
        "{{ r }}{% endblock %}"
    )
    check = check_template(html, "Hi {{ first_name }}", library=pinned)
    # title is set by the template, item by its loop, r is its import: none is a column.
    assert check.variables == ["email", "first_name", "items", "plan"]


def test_names_set_outside_blocks_are_not_fields_of_the_blocks() -> None:
    assert check_template("{% set x = 1 %}{% block b %}{{ x }}{% endblock %}", "s").variables == []
    assert check_template("{% block b %}{{ y }}{% endblock %}", "s").variables == ["y"]
    # A field the template changes is still a field.
    html = "{% set name = name|title %}{% block b %}Hi {{ name }}{% endblock %}"
    assert check_template(html, "s").variables == ["name"]
    assert check_template("{% set name = name|title %}{{ name }}", "s").variables == ["name"]


def test_loading_is_refused_unless_by_a_quoted_pinned_name_in_the_html() -> None:
    pinned = library({"footer": "tpl_f"}, tpl_f=("F", {}))
    cases = {
        "{% include name %}": "takes one template name in quotes",
        "{% include ['footer'] %}": "takes one template name in quotes",
        "{% include 'footer' ignore missing %}": "'ignore missing' cannot be used",
        "{% set t = 'footer' %}{% include t %}": "takes one template name in quotes",
        "{% include 'other' %}": "there is no template 'other'",
    }
    for html, reason in cases.items():
        check = check_template(html, "s", library=pinned)
        assert not check.is_valid and reason in check.problems[0].message, html
    check = check_template("<p>ok</p>", "{% include 'footer' %}", library=pinned)
    assert check.problems[0].part == "subject"
    assert "cannot be used in the subject" in check.problems[0].message
    assert check_template("{% include 'footer' %}", "s", library=pinned).is_valid


def test_unusable_names_are_reported_on_their_line() -> None:
    pinned = TemplateLibrary("tpl_root", {"tpl_root": {}}, unusable={"x": "why not"})
    check = check_template("a\nb\n{% include 'x' %}", "s", library=pinned)
    assert check.problems == [TemplateProblem(3, "why not", "html")]


def test_problems_in_a_loaded_template_name_it() -> None:
    pinned = TemplateLibrary(
        "tpl_root",
        {"tpl_root": {"f": "tpl_f"}, "tpl_f": {}},
        sources={"tpl_f": "ok\n{{ x.__class__ }}"},
        labels={"tpl_f": "'f' (tpl_f)"},
    )
    check = check_template("{% include 'f' %}", "s", library=pinned)
    assert not check.is_valid
    assert check.problems[0].message.startswith("in 'f' (tpl_f), line 2: '__class__'")


def test_the_text_part_is_derived_from_the_whole_rendered_html() -> None:
    pinned = library({"foot": "tpl_f"}, tpl_f=("<p>Bye <b>{{ first_name }}</b></p>", {}))
    content = compile_template("<h1>Hi</h1>{% include 'foot' %}", "s", library=pinned).render(
        FIELDS
    )
    assert "<" not in content.text and "Bye Ann" in content.text


def test_an_imported_module_is_built_anew_for_every_message() -> None:
    pinned = library(
        {"m": "tpl_m"},
        tpl_m=(
            "{% set ns = namespace(seen='') %}"
            "{% macro see(x) %}{{ ns.seen }}{% set ns.seen = ns.seen ~ x %}{% endmacro %}",
            {},
        ),
    )
    compiled = compile_template(
        "{% import 'm' as m %}[{{ m.see(first_name) }}]", "s", library=pinned
    )
    first = compiled.render(FIELDS)
    second = compiled.render(FIELDS | {"first_name": "Bo"})
    assert first.html == second.html == "[]"  # nothing of Ann's render is left for Bo's


# Render limits across the templates loaded


LIMITS = RenderLimits(max_bytes=200_000, timeout_seconds=1.0, max_iterations=10_000)


def test_loops_in_loaded_templates_share_the_message_budget() -> None:
    pinned = library({"loop": "tpl_l"}, tpl_l=("{% for i in range(6000) %}{% endfor %}", {}))
    check = check_template(
        "{% include 'loop' %}{% include 'loop' %}", "s", library=pinned, limits=LIMITS
    )
    assert not check.is_valid and "iterations" in check.problems[0].message


def test_output_of_loaded_templates_counts_towards_the_rendered_size() -> None:
    pinned = library({"big": "tpl_b"}, tpl_b=("{{ first_name * 10000 }}", {}))
    html = "{% for i in range(30) %}{% include 'big' %}{% endfor %}"
    assert check_template(html, "s", library=pinned, limits=LIMITS).is_valid  # empty fields
    compiled = compile_template(html, "s", library=pinned, limits=LIMITS)
    with pytest.raises(RenderLimitExceeded) as raised:
        compiled.render(FIELDS)
    assert raised.value.details["limit"] in ("rendered_size", "memory")


def test_recursion_through_an_include_is_stopped() -> None:
    pinned = library(
        {"self": "tpl_s"}, tpl_s=("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", {})
    )
    check = check_template("{% include 'self' %}", "s", library=pinned, limits=LIMITS)
    assert not check.is_valid and "recursion" in check.problems[0].message
