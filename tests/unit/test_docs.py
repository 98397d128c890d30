"""The README is kept honest: every setting and every error code in the code is documented."""

from __future__ import annotations

import re
from pathlib import Path

from postroom.config import Settings

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()
SOURCES = [p.read_text() for p in (ROOT / "src" / "postroom").rglob("*.py")]


def test_every_setting_is_in_the_readme() -> None:
    missing = [
        f"POSTROOM_{name.upper()}"
        for name in Settings.model_fields
        if f"`POSTROOM_{name.upper()}`" not in README
    ]
    assert missing == []


def error_codes() -> set[str]:
    codes: set[str] = set()
    for text in SOURCES:
        codes |= set(re.findall(r'\bcode(?:=| = )"([a-z][a-z0-9_]+)"', text))
        codes |= set(re.findall(r'\breason="([a-z][a-z0-9_]+)"', text))
        codes |= set(re.findall(r'lifecycle\.fail_campaign\([^)]*?code="([a-z_]+)"', text))
        codes |= set(re.findall(r'self\._fail\(\s*[^,]+,\s*"([a-z_]+)"', text))
    codes.discard("what")
    return codes


def test_every_error_code_is_in_the_readme() -> None:
    codes = error_codes()
    assert {"not_csv", "malformed_csv", "missing_api_key", "processing_error"} <= codes
    missing = sorted(code for code in codes if f"`{code}`" not in README)
    assert missing == []


def test_readme_quick_start_is_the_two_commands() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make run" in quick_start and "make test" in quick_start
