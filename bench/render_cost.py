"""What the template sandbox costs per message, before and after a change.

    .venv/bin/python -m bench.render_cost [--base main] [--renders 10000] [--rounds 5]

Renders a typical template (about 10 KB, 20 variables, a loop of 10) through the code the
sender uses, with the sources of ``--base`` (from git) and of this tree, each in its own
process, alternating rounds; prints the best CPU time of each and their ratio, for the loop
written with the loop variable (``loop.index``) and without it.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
FIELDS = [f"field_{n}" for n in range(20)]
# The loop's body: with the loop variable (loop.index, loop.last) or without.
LOOPS = {
    "loop variable": "Item {{ loop.index }} for {{ field_0 }}{% if loop.last %} (last){% endif %}",
    "no loop variable": "Item {{ n }} for {{ field_0 }}{% if n == 9 %} (last){% endif %}",
}


def typical_template(loop_body: str = LOOPS["loop variable"]) -> str:
    """About 10 KB of HTML using 20 variables and one loop of 10."""
    rows = "".join(
        f"<tr><td class='label'>{name.replace('_', ' ')}</td><td>{{{{ {name} }}}}</td></tr>\n"
        for name in FIELDS
    )
    loop = f"<ul>{{% for n in range(10) %}}<li class='item'>{loop_body}</li>{{% endfor %}}</ul>\n"
    filler = "<p>" + "Postroom sends your campaign with care and attention. " * 8 + "</p>\n"
    html = f"<html><body><h1>Hello {{{{ field_1 }}}}</h1><table>{rows}</table>{loop}"
    while len(html) < 10_000:
        html += filler
    return html + "</body></html>\n"


def measure(renders: int, loop: str) -> float:
    """CPU seconds to render the typical template ``renders`` times with this process's code."""
    from postroom.templates.sandbox import compile_template

    template = compile_template(typical_template(LOOPS[loop]), "Hello {{ field_1 }}")
    rows = [{name: f"{name} value {n}" for name in FIELDS} for n in range(100)]
    started = time.process_time()
    for n in range(renders):
        template.render(rows[n % len(rows)])
    return time.process_time() - started


def export_sources(revision: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision, "src"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def run_in(sources: Path, renders: int, loop: str) -> float:
    """The best of three measurements in a fresh process importing Postroom from ``sources``."""
    code = (
        "from bench.render_cost import measure; "
        f"print(min(measure({renders}, {loop!r}) for _ in range(3)))"
    )
    env = {"PYTHONPATH": f"{sources}:{ROOT}", "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    )
    return float(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="main", help="git revision to compare with")
    parser.add_argument("--renders", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"template: {len(typical_template())} bytes, {len(FIELDS)} variables, a loop of 10")
    with tempfile.TemporaryDirectory() as tmp:
        base_sources = export_sources(args.base, Path(tmp))
        for loop in LOOPS:
            base, current = [], []
            for _ in range(args.rounds):
                base.append(run_in(base_sources, args.renders, loop))
                current.append(run_in(ROOT / "src", args.renders, loop))
            print(
                f"{loop}: {args.base} {min(base):.3f} s, this tree {min(current):.3f} s "
                f"for {args.renders} renders (CPU time, best of {args.rounds}); "
                f"ratio {min(current) / min(base):.3f}"
            )


if __name__ == "__main__":
    main()
