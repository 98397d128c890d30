"""Known server-side template injection payloads (tests/fixtures/ssti/payloads.txt): each one
is refused at upload or fails the message, rendered exactly as the sender renders, and none
puts anything of the platform into a message or into the error the tenant reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from postroom.config import Settings
from postroom.templates.builtins import message_fields
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
)
# ...and in a message, any Python name at all (errors may quote the names the template built).
LEAK_MARKERS = (*PLATFORM_MARKERS, "__", "subclasses", "mro")
ROW = {"name": "Ann", "plan": "gold"}


def test_the_corpus_has_the_payloads_the_issue_asks_for() -> None:
    assert len(PAYLOADS) >= 40
    text = CORPUS.read_text()
    for needle in ("__subclasses__", "cycler", "joiner", "namespace", "self.__init__", "lipsum"):
        assert needle in text
    for needle in ("request.", "config", ".format(", "|attr(", "map(attribute=", "% ("):
        assert needle in text
    for needle in ("range(1000000000)", "'a' * 100000000", "recursive", "{% macro f"):
        assert needle in text


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

    # At upload: what the API does with the template (api/uploads.py, templates/service.py).
    check = check_template(html, subject, max_bytes=settings.template_max_bytes, limits=limits)
    if not check.is_valid:
        for problem in check.problems:  # shown to the tenant; it may quote the template
            assert not leaks(problem.message, payload, PLATFORM_MARKERS), problem
        return

    # At send time: what the sender does (delivery/sender.py, _context and _prepare_one).
    compiled = TemplateCache(limits=limits).get_or_compile(f"tpl:{number}", html, subject)
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
