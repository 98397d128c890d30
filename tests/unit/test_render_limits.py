"""Render limits: each one refuses a hostile template at upload or fails the message with
render_limit and the limit named, and a render after it starts afresh."""

from __future__ import annotations

import time

import pytest

from postroom.config import Settings
from postroom.templates.limits import LimitExceeded, RenderLimits, printed_size
from postroom.templates.sandbox import (
    CompiledTemplate,
    RenderError,
    RenderLimitExceeded,
    check_template,
    compile_template,
)

SMALL = RenderLimits(max_bytes=10_000, timeout_seconds=0.2, max_iterations=1000)


def compiled(html: str, subject: str = "Hi", limits: RenderLimits = SMALL) -> CompiledTemplate:
    return compile_template(html, subject, limits=limits)


def limit_hit(template: CompiledTemplate, **fields: str) -> str:
    with pytest.raises(RenderLimitExceeded) as caught:
        template.render(fields)
    error = caught.value
    assert error.code == "render_limit"
    assert isinstance(error, RenderError)  # the sender fails the message with it
    assert error.message.startswith(f"{error.details['limit']}: ")
    limit: str = error.details["limit"]
    return limit


def test_limits_come_from_the_settings() -> None:
    assert RenderLimits.from_settings(Settings()) == RenderLimits(
        max_bytes=2 * 1024 * 1024, timeout_seconds=1.0, max_iterations=100_000
    )
    settings = Settings(render_max_bytes=5, render_timeout_seconds=0.5, render_max_iterations=7)
    assert RenderLimits.from_settings(settings) == RenderLimits(5, 0.5, 7)


def test_rendered_size_counts_all_parts_of_the_message() -> None:
    template = compiled("{% for i in range(n|int) %}{{ word }}{% endfor %}", "{{ word }}")
    # 10 bytes of HTML, 10 of text, 10 of subject: 30 fit, 3 * 3400 do not.
    assert template.render({"n": "1", "word": "x" * 10}).html == "x" * 10
    assert limit_hit(template, n="1", word="x" * 3400) == "rendered_size"
    assert limit_hit(template, n="500", word="xxxxxxxxxx") == "rendered_size"


def test_rendered_size_is_counted_in_utf8_bytes() -> None:
    limits = RenderLimits(max_bytes=100)
    template = compile_template("{{ word }}", "s", limits=limits)
    assert template.render({"word": "é" * 20}).html == "é" * 20  # 40 bytes, twice, and "s"
    assert limit_hit(template, word="é" * 30) == "rendered_size"  # 30 characters, 120 bytes


def test_loop_steps_of_all_loops_and_parts_count_together() -> None:
    # The text part is rendered from the same loops: each step counts twice.
    nested = compiled(
        "{% for i in range(n|int) %}{% for j in range(n|int) %}{% endfor %}{% endfor %}"
    )
    nested.render({"n": "21"})  # 2 * (21 + 441) = 924 steps
    assert limit_hit(nested, n="22") == "iterations"  # 2 * (22 + 484) = 1012
    assert limit_hit(compiled("{{ range(n|int)|list|length }}"), n="1001") == "iterations"
    loop_over_text = compiled("{% for c in word %}{% endfor %}")
    loop_over_text.render({"word": "x" * 500})
    assert limit_hit(loop_over_text, word="x" * 501) == "iterations"


def test_a_recursive_loop_counts_its_steps_too() -> None:
    template = compiled("{% for x in range(9) recursive %}{{ loop(range(9)) }}{% endfor %}")
    assert limit_hit(template) in ("iterations", "recursion")


def test_string_repetition_is_limited() -> None:
    template = compiled("{{ 'ab' * (n|int) }}", limits=RenderLimits())
    assert template.render({"n": "3"}).html == "ababab"
    assert limit_hit(template, n="50001") == "repetition"
    assert limit_hit(compiled("{{ [1] * (n|int) }}"), n="100001") == "repetition"


def test_values_built_are_charged_before_they_are_built() -> None:
    limits = RenderLimits(max_bytes=10_000)  # so a render may build 80,000 bytes
    template = compile_template("{{ word.center(n|int)|length }}", "s", limits=limits)
    assert template.render({"word": "x", "n": "100"}).html == "100"
    assert limit_hit(template, word="x", n="999999999") == "memory"
    join = compile_template("{{ ([word] * 100)|join|length }}", "s", limits=limits)
    assert join.render({"word": "x" * 100}).html == "10000"
    assert limit_hit(join, word="x" * 1000) == "memory"
    growing = compile_template(
        "{% set ns = namespace(s=word) %}{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s|length }}",
        "s",
        limits=limits,
    )
    assert limit_hit(growing, word="ab") == "memory"


def test_macro_and_block_output_is_charged() -> None:
    template = compiled(
        "{% set s %}{% for i in range(n|int) %}{{ word }}{% endfor %}{% endset %}{{ s|length }}"
    )
    assert template.render({"n": "10", "word": "abc"}).html == "30"
    assert limit_hit(template, n="900", word="x" * 1000) == "memory"


def test_render_time_is_limited_and_the_render_stops_soon_after() -> None:
    limits = RenderLimits(timeout_seconds=0.1)
    template = compile_template(
        "{% set s = ([word] * 10)|join %}{% for i in range(99999) %}{% if s.count('ba') %}"
        "{% endif %}{% endfor %}",
        "s",
        limits=limits,
    )
    started = time.monotonic()
    assert limit_hit(template, word="ab" * 49_999) == "render_time"
    assert time.monotonic() - started < 0.5


def test_comparisons_look_at_the_clock() -> None:
    limits = RenderLimits(timeout_seconds=0.1)
    conditions = " and ".join(["a == b"] * 50)
    template = compile_template(
        "{% set a = word * 1 %}{% set b = word ~ '' %}"
        + "{% for i in range(99999) %}{% if "
        + conditions
        + " %}{% endif %}{% endfor %}",
        "s",
        limits=limits,
    )
    started = time.monotonic()
    assert limit_hit(template, word="x" * 99_999) == "render_time"
    assert time.monotonic() - started < 0.5


def test_recursion_is_a_limit() -> None:
    template = compiled("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}")
    assert limit_hit(template) == "recursion"


def test_the_next_render_starts_with_a_full_budget() -> None:
    template = compiled("{% for i in range(n|int) %}{{ word }}{% endfor %}")
    assert limit_hit(template, n="5000", word="x") == "iterations"
    for _ in range(3):
        assert template.render({"n": "450", "word": "y"}).html == "y" * 450


def test_a_template_over_a_limit_whatever_the_data_is_invalid_at_upload() -> None:
    check = check_template("<p>{% for i in range(10000000) %}x{% endfor %}</p>", "Hi")
    assert not check.is_valid
    assert check.problems[0].part == "html"
    assert check.problems[0].message.startswith("iterations: ")
    subject = check_template("<p>ok</p>", "{{ 'x' * 100000000 }}")
    assert not subject.is_valid and subject.problems[0].part == "subject"
    assert subject.problems[0].message.startswith("repetition: ")
    slow = check_template(
        "{% set s = (['ab' * 49999] * 10)|join %}{% for i in range(99999) %}"
        "{% if s.count('ba') %}{% endif %}{% endfor %}",
        "Hi",
        limits=RenderLimits(timeout_seconds=0.1),
    )
    assert not slow.is_valid and slow.problems[0].message.startswith("render_time: ")


def test_a_template_over_a_limit_only_for_some_data_is_valid() -> None:
    html = "{% for i in range(n|int) %}x{% endfor %}{{ missing_in_some_rows }}"
    check = check_template(html, "Hi")
    assert check.is_valid, check.problems
    template = compile_template(html, "Hi")
    assert limit_hit(template, n="200000", missing_in_some_rows="") == "iterations"


def test_only_plain_data_is_printed() -> None:
    for html in ("{{ cycler }}", "{{ name.upper }}", "{{ range }}", "{{ [joiner] }}"):
        with pytest.raises(RenderError) as caught:
            compiled(html).render({"name": "a"})
        assert caught.value.code == "render_error"
    assert compiled("{{ [1, 'a', {'b': none}] }}").render({}).html == (
        "[1, &#39;a&#39;, {&#39;b&#39;: None}]"
    )
    assert compiled("{{ range(3) }}").render({}).html == "range(0, 3)"


def test_ordinary_methods_of_text_work_and_others_are_refused() -> None:
    template = compiled("{{ name.split(' ')|join('-') }} {{ name.replace('a', 'o') }}")
    assert template.render({"name": "ana b"}).html == "ana-b ono b"
    check = check_template("<p>\n{{ '{:.2f}'.format(price) }}</p>", "s")
    assert not check.is_valid
    assert (check.problems[0].line, check.problems[0].message) == (
        2,
        "'.format()' cannot be used: use the format filter",
    )
    assert compiled("{{ '%.2f'|format(price|float) }}").render({"price": "2"}).html == "2.00"
    for html in ("{{ name['format']() }}", "{{ name.encode() }}", "{{ name.translate({}) }}"):
        with pytest.raises(RenderError):
            compiled(html).render({"name": "a"})


def test_printed_size_stops_counting_past_the_limit() -> None:
    shared = ["x" * 1000] * 10
    nested = [shared] * 10
    assert printed_size(nested, 10**9) == 10 * (64 + 10 * (64 + 1000))
    started = time.monotonic()
    assert printed_size([nested] * 10**5, 5000) > 5000
    assert printed_size([[nested] * 10] * 10**4, 10**6) > 10**6
    assert time.monotonic() - started < 0.1
    with pytest.raises(LimitExceeded):
        deep: list[object] = []
        for _ in range(100):
            deep = [deep]
        printed_size(deep, 10**9)


def test_rendering_outside_a_compiled_template_is_refused() -> None:
    template = compiled("{{ name }}")
    with pytest.raises(LimitExceeded):
        template._html.render(name="x")
