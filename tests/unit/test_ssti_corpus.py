"""Known server-side template injection payloads (tests/fixtures/ssti/payloads.txt): each one
is refused at upload or fails the message, rendered exactly as the sender renders, and none
puts anything of the platform into a message or into the error the tenant reads."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from postroom.config import Settings
from postroom.templates.builtins import message_fields
from postroom.templates.library import (
    Candidate,
    TemplateLibrary,
    gather_pins,
    pin_names,
    reachable,
    referenced_names,
)
from postroom.templates.limits import RenderLimits
from postroom.templates.sandbox import RenderError, TemplateCache, check_template

CORPUS = Path(__file__).parents[1] / "fixtures" / "ssti" / "payloads.txt"
PAYLOADS = [
    (number, line)
    for number, line in enumerate(CORPUS.read_text().splitlines(), start=1)
    if line.strip() and not line.startswith("#")
]
SECRET_KEY = "s3cret-key-that-must-never-show"
ENV_MARKER = "env-marker-that-must-never-show"
OTHER_TENANT_MARKER = "other-tenant-text-that-must-never-show"
# What a leak would look like: reprs of classes, functions and objects, module paths.
PLATFORM_MARKERS = (
    "<class",
    "<built-in",
    "<function",
    "<module",
    "<bound method",
    " object at 0x",
    "site-packages",
    "jinja2",
    "postroom.",
    "/postroom/",
    ".py",
    SECRET_KEY,
    ENV_MARKER,
    OTHER_TENANT_MARKER,
)
# ...and in a message, any Python name at all (errors may quote the names the template built).
LEAK_MARKERS = (*PLATFORM_MARKERS, "__", "subclasses", "mro")
ROW = {"name": "Ann", "plan": "gold"}
# The tenant's own templates (id: name, source, pins), which a payload may load by name or id,
# and another tenant's, which the database query never offers (templates/pinning.py).
OWN_TEMPLATES = {
    "tpl_own_base": (
        "base",
        "<html>{% block content %}{% endblock %}{% include 'footer' %}</html>",
        {"footer": "tpl_own_footer"},
    ),
    "tpl_own_footer": ("footer", "<p>Bye {{ name }}</p>", {}),
    "tpl_own_macros": (
        "macros",
        "{% set ns = namespace(n=0) %}{% macro button(t) %}<b>{{ t }}</b>{% endmacro %}",
        {},
    ),
    "tpl_own_heavy": ("heavy", "{% for i in range(99999) %}{{ name * 99 }}{% endfor %}", {}),
}
OTHER_TENANT = {"tpl_0ther0tenant0secret": ("footer", f"<p>{OTHER_TENANT_MARKER}</p>", {})}


def test_the_corpus_has_the_payloads_the_issue_asks_for() -> None:
    assert len(PAYLOADS) >= 40
    text = CORPUS.read_text()
    for needle in ("__subclasses__", "cycler", "joiner", "namespace", "self.__init__", "lipsum"):
        assert needle in text
    for needle in ("request.", "config", ".format(", "|attr(", "map(attribute=", "% ("):
        assert needle in text
    for needle in ("range(1000000000)", "'a' * 100000000", "recursive", "{% macro f"):
        assert needle in text
    for needle in ("tpl_0ther0tenant0secret", "'../", "'/etc/passwd'", "'var/secret.key'"):
        assert needle in text
    for needle in ("_TemplateReference__context", "ignore missing", "loader", "{% import 'macros'"):
        assert needle in text


def own_library(html: str) -> TemplateLibrary:
    """What the platform pins for ``html`` at upload, among the tenant's own templates."""
    names = referenced_names(html)
    moment = datetime(2026, 11, 30, tzinfo=UTC)
    candidates = [
        Candidate(key, name, "ready", moment) for key, (name, _, _) in OWN_TEMPLATES.items()
    ]
    pins, unusable = pin_names(names, candidates, own_id="tpl_payload")

    def read_pins(ids: list[str]) -> dict[str, dict[str, str]]:
        return {key: OWN_TEMPLATES[key][2] for key in ids if key in OWN_TEMPLATES}

    all_pins, nesting = gather_pins("tpl_payload", pins, read_pins)
    loaded = reachable("tpl_payload", all_pins)
    return TemplateLibrary(
        root_id="tpl_payload",
        pins=all_pins,
        sources={key: OWN_TEMPLATES[key][1] for key in loaded},
        unusable={**unusable, **nesting},
    )


@pytest.fixture(scope="module")
def settings() -> Settings:
    # The defaults the platform runs with, but a shorter clock: the slow payloads hit it sooner.
    return Settings(secret_key=SECRET_KEY, render_timeout_seconds=0.25)


def leaks(text: str, payload: str, markers: tuple[str, ...] = LEAK_MARKERS) -> list[str]:
    found = [marker for marker in markers if marker in text and marker not in payload]
    found += [
        f"${name}"
        for name, value in os.environ.items()
        if len(value) >= 8 and value in text and value not in payload
    ]
    return found


@pytest.mark.parametrize(
    ("number", "payload"), PAYLOADS, ids=[f"line{number}" for number, _ in PAYLOADS]
)
@pytest.mark.parametrize("part", ["html", "subject"])
def test_payload_is_refused_and_leaks_nothing(
    number: int, payload: str, part: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTROOM_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("POSTROOM_CORPUS_MARKER", ENV_MARKER)
    html, subject = (payload, "Hello {{ name }}") if part == "html" else ("<p>Hi</p>", payload)
    limits = RenderLimits.from_settings(settings)
    library = own_library(html)

    # At upload: what the API does with the template (api/uploads.py, templates/service.py).
    check = check_template(
        html, subject, max_bytes=settings.template_max_bytes, limits=limits, library=library
    )
    if not check.is_valid:
        for problem in check.problems:  # shown to the tenant; it may quote the template
            assert not leaks(problem.message, payload, PLATFORM_MARKERS), problem
        return

    # At send time: what the sender does (delivery/sender.py, _context and _prepare_one).
    cache = TemplateCache(limits=limits)
    compiled = cache.get_or_compile(f"tpl:{number}", html, subject, library)
    fields = message_fields(ROW, "ann@example.com", "https://example.com/u/token")
    try:
        content = compiled.render(fields)
    except RenderError as exc:
        assert exc.code in ("render_error", "render_limit")
        failure = f"{exc.code}: {exc.message}"  # the message's last_error (may quote names)
        assert not leaks(failure, payload, PLATFORM_MARKERS), failure
        return
    rendered = "\n".join((content.subject, content.html, content.text))
    assert not leaks(rendered, payload), rendered
    pytest.fail(f"line {number} rendered: {rendered[:300]!r}")
