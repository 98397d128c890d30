"""The template sandbox: checking, compiling, rendering, and refusing what is unsafe."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postroom.errors import PostroomError
from postroom.templates.sandbox import (
    CompiledTemplate,
    RenderError,
    TemplateCache,
    TemplateInvalid,
    TemplateProblem,
    check_template,
    compile_template,
)

# Classic server-side template injection payloads. Each must be refused when the template is
# checked or fail to render; none may ever produce output.
SSTI_PAYLOADS = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ x.__class__.__base__.__subclasses__() }}",
    "{{ x._private }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ range.__self__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__.__builtins__ }}",
    "{{ request.application.__globals__.__builtins__.__import__('os') }}",
    "{{ config.items() }}",
    "{{ config.__class__.__init__.__globals__['os'] }}",
    "{{ x['__class__'] }}",
    "{{ x|attr('__class__') }}",
    "{{ x|attr('_' ~ '_class__') }}",
    "{{ x[('_' ~ '_class__')] }}",
    "{% set a = '_' ~ '_class__' %}{{ x|attr(a) }}",
    "{% set a = '_' ~ '_class__' %}{{ x[a] }}",
    "{{ '{0.__class__}'.format(x) }}",
    "{{ '%s'.__mod__ }}",
    "{{ x|map(attribute='__class__')|list }}",
    "{{ [x]|map(attribute='__class__')|list }}",
    "{{ [x]|map(attribute=('_' ~ '_class__'))|list }}",
    "{{ dict.__base__.__subclasses__() }}",
    "{{ [].append(1) }}",
    "{{ {}.update(a=1) }}",
    "{{ __builtins__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}",
    "{% from 'x' import y %}",
    "{% extends 'base.html' %}",
    "{{ 'a' * 100000000 }}",
    "{{ [1] * 100000000 }}",
    "{{ 9 ** 999999 }}",
    "{{ (9 ** 200) ** 200 }}",
    "{% set n = 2 ** 2000 %}{{ n * n * n }}",
    "{{ lipsum(100000) }}",
    "{{ range(10000000)|list }}",
]

LEAK_MARKERS = ("<class", "<built-in", "<function", "<module", "__", "subclasses", "globals")


def render(html: str, subject: str = "Subject", **fields: str) -> str:
    return compile_template(html, subject).render(fields).html


def test_variables_come_from_html_and_subject_sorted() -> None:
    check = check_template("<p>{{ name }} {{ city }}</p>", "Hello {{ first_name }}")
    assert check.is_valid
    assert check.variables == ["city", "first_name", "name"]
    assert check.problems == []


def test_loop_and_set_variables_are_not_fields() -> None:
    html = (
        "{% for item in items %}{{ item.title }}{{ loop.index }}{% endfor %}"
        "{% set greeting = 'Hi' %}{{ greeting }} {{ name }}"
        "{% with z = 1 %}{{ z }}{% endwith %}{{ range(3)|list }}"
    )
    assert check_template(html, "{{ name }}").variables == ["items", "name"]


def test_syntax_error_is_invalid_with_its_line() -> None:
    check = check_template("<p>one</p>\n<p>two</p>\n<p>{{ name }</p>", "ok")
    assert not check.is_valid
    assert len(check.problems) == 1
    problem = check.problems[0]
    assert (problem.part, problem.line) == ("html", 3)
    assert problem.message


def test_subject_problems_are_reported_for_the_subject() -> None:
    check = check_template("<p>ok</p>", "Hi {% if %}")
    assert not check.is_valid
    assert check.problems[0].part == "subject"
    assert check.problems[0].line == 1


def test_unknown_filter_is_invalid() -> None:
    check = check_template("{{ name|no_such_filter }}", "s")
    assert not check.is_valid
    assert "no_such_filter" in check.problems[0].message


def test_forbidden_constructs_are_reported_with_line() -> None:
    check = check_template("line one\n{{ x.__class__ }}\n{% include 'a' %}", "s")
    assert not check.is_valid
    assert [(p.line, p.part) for p in check.problems] == [(2, "html"), (3, "html")]
    assert "__class__" in check.problems[0].message
    assert check.problems[1].message == "there is no template 'a'"


@pytest.mark.parametrize("tag", ["{% include 'x' %}", "{% import 'x' as y %}", "{% extends 'x' %}"])
def test_templates_load_only_what_was_pinned_for_them(tag: str) -> None:
    # Without a library (templates/library.py) there is nothing a template may load.
    check = check_template(tag, "s")
    assert not check.is_valid
    assert check.problems[0].message == "there is no template 'x'"


def test_oversize_template_is_invalid() -> None:
    check = check_template("x" * 101, "s", max_bytes=100)
    assert not check.is_valid
    assert check.problems == [
        TemplateProblem(None, "the template is 101 bytes, more than the limit of 100", "html")
    ]
    assert check_template("x" * 100, "s", max_bytes=100).is_valid


def test_size_is_measured_in_utf8_bytes() -> None:
    assert not check_template("é" * 60, "s", max_bytes=100).is_valid


def test_compile_template_raises_template_invalid() -> None:
    with pytest.raises(TemplateInvalid) as caught:
        compile_template("{{ oops", "s")
    error = caught.value
    assert isinstance(error, PostroomError)
    assert error.code == "template_invalid"
    assert error.details["problems"][0]["part"] == "html"


def test_compile_applies_a_size_limit_only_when_asked() -> None:
    compile_template("x" * 200, "s")
    with pytest.raises(TemplateInvalid):
        compile_template("x" * 200, "s", max_bytes=100)


@pytest.mark.parametrize("payload", SSTI_PAYLOADS)
def test_injection_payloads_are_refused_or_fail_to_render(payload: str) -> None:
    for html, subject in ((payload, "s"), ("<p>ok</p>", payload)):
        check = check_template(html, subject)
        if not check.is_valid:
            continue
        fields = {name: "hello" for name in check.variables}
        with pytest.raises(RenderError) as caught:
            compile_template(html, subject).render(fields)
        assert caught.value.code == "render_error"


@given(st.sampled_from(SSTI_PAYLOADS), st.text(max_size=20))
def test_injection_payloads_never_leak(payload: str, value: str) -> None:
    check = check_template(payload, payload)
    if not check.is_valid:
        return
    fields = {name: value for name in check.variables}
    try:
        content = compile_template(payload, payload).render(fields)
    except RenderError:
        return
    for marker in LEAK_MARKERS:  # pragma: no cover - reaching here is the failure
        assert marker not in content.html + content.subject


def test_field_values_are_escaped_in_html_but_not_in_subject() -> None:
    template = compile_template("<p>{{ name }}</p>", "About {{ name }}")
    content = template.render({"name": "<script>alert('x')</script> & co"})
    assert content.html == "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co</p>"
    assert content.subject == "About <script>alert('x')</script> & co"
    assert content.text == "<script>alert('x')</script> & co\n"


def test_line_breaks_in_the_subject_become_single_spaces() -> None:
    template = compile_template("<p>x</p>", "Hello {{ name }}\n")
    content = template.render({"name": "Ann\r\nBcc: evil@example.test \x00\t x\u2028y"})
    assert content.subject == "Hello Ann Bcc: evil@example.test x y"


def test_subject_keeps_ordinary_spacing() -> None:
    content = compile_template("x", "  A  B\u00a0C  ").render({})
    assert content.subject == "A  B\u00a0C"


@given(st.text())
def test_subject_never_contains_a_control_character(value: str) -> None:
    subject = compile_template("x", "{{ v }}").render({"v": value}).subject
    assert subject == subject.strip()
    assert not any(ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029" for c in subject)


def test_missing_variable_is_a_render_error() -> None:
    template = compile_template("<p>{{ name }} {{ city }}</p>", "s")
    with pytest.raises(RenderError) as caught:
        template.render({"name": "Ann"})
    assert "city" in caught.value.message
    assert caught.value.details["part"] == "html"


def test_missing_variable_in_the_subject_is_a_render_error() -> None:
    with pytest.raises(RenderError) as caught:
        compile_template("x", "Hi {{ first_name }}").render({})
    assert caught.value.details["part"] == "subject"


def test_missing_variable_in_a_condition_is_a_render_error() -> None:
    with pytest.raises(RenderError):
        compile_template("{% if vip %}VIP{% endif %}", "s").render({})


def test_defined_test_allows_optional_fields() -> None:
    template = compile_template("{% if vip is defined %}VIP {% endif %}{{ name }}", "s")
    assert template.render({"name": "Ann"}).html == "Ann"


def test_any_exception_during_render_is_a_render_error() -> None:
    with pytest.raises(RenderError):
        compile_template("{{ 1 / 0 }}", "s").render({})
    with pytest.raises(RenderError):
        compile_template("{{ name|int + [] }}", "s").render({"name": "1"})


def test_render_gives_text_part() -> None:
    content = compile_template(
        '<p>Hi {{ name }}</p><a href="https://e.test/{{ id }}">Open</a>', "s"
    ).render({"name": "Ann", "id": "42"})
    assert content.text == "Hi Ann\n\nOpen (https://e.test/42)\n"


def test_ordinary_template_features_work() -> None:
    html = (
        "{% set ns = namespace(total=0) %}"
        "{% for n in range(3) %}{% set ns.total = ns.total + n %}{% endfor %}"
        "{{ ns.total }} {{ name|upper }} {{ '%.2f'|format(price|float) }} {{ 'ab' * 2 }}"
        "{{ dict(a=1)['a'] }} {{ 2 ** 10 }}"
    )
    assert render(html, name="ann", price="3.5") == "3 ANN 3.50 abab1 1024"


def test_compiled_template_is_reusable() -> None:
    template = compile_template("{{ name }}", "{{ name }}")
    assert [template.render({"name": n}).html for n in ("a", "b")] == ["a", "b"]
    assert template.variables == ["name"]


def test_cache_reuses_compiled_templates() -> None:
    cache = TemplateCache(max_entries=2)
    first = cache.get_or_compile("k1", "{{ a }}", "s")
    assert isinstance(first, CompiledTemplate)
    assert cache.get_or_compile("k1", "ignored", "ignored") is first
    assert len(cache) == 1


def test_cache_evicts_least_recently_used() -> None:
    cache = TemplateCache(max_entries=2)
    one = cache.get_or_compile("k1", "1", "s")
    cache.get_or_compile("k2", "2", "s")
    assert cache.get_or_compile("k1", "1", "s") is one  # k1 is now the most recent
    cache.get_or_compile("k3", "3", "s")
    assert len(cache) == 2
    assert cache.get_or_compile("k1", "1", "s") is one
    assert cache.get_or_compile("k2", "2", "s").render({}).html == "2"


def test_cache_does_not_keep_invalid_templates() -> None:
    cache = TemplateCache()
    with pytest.raises(TemplateInvalid):
        cache.get_or_compile("bad", "{{", "s")
    assert len(cache) == 0


def test_text_part_from_the_derived_template_matches_converting_each_message() -> None:
    from postroom.templates.plaintext import html_to_text

    html = (
        "<html><head><style>p{color:red}</style></head><body><h1>Hi {{ name }}</h1>"
        "<ul>{% for i in [1, 2] %}<li>item {{ i }} for {{ name }}</li>{% endfor %}</ul>"
        '<p>Plan: <b>{{ plan }}</b> <a href="https://example.com/{{ plan }}">details</a></p>'
        "</body></html>"
    )
    compiled = compile_template(html, "Hello")
    assert compiled._text is not None  # the fast path is taken for this template
    for fields in ({"name": "Ann", "plan": "gold"}, {"name": "Bo & <Co>", "plan": "x y"}):
        content = compiled.render(fields)
        assert content.text == html_to_text(content.html)


def test_a_template_tag_the_text_conversion_would_drop_falls_back_per_message() -> None:
    compiled = compile_template("<style>p{color:{{ colour }}}</style><p>{{ name }}</p>", "Hi")
    assert compiled._text is None
    assert compiled.render({"colour": "red", "name": "Ann"}).text == "Ann\n"
