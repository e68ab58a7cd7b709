"""The README's Python examples run, and the numbers their comments state are the numbers they give."""

from __future__ import annotations

import re

from .conftest import ROOT


def python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_every_python_example_runs_and_its_stated_numbers_hold():
    blocks = python_blocks()
    assert len(blocks) >= 2
    checked = 0
    for block in blocks:
        namespace: dict = {}
        exec(block, namespace)  # noqa: S102 - the README's own examples
        for line in block.splitlines():
            code, _, comment = line.partition("  # ")
            stated = re.match(r"\s*(-?\d+)(?=$|[:\s])", comment)  # a number, not the start of a formula
            if stated and code.strip() and " = " not in code and not line.startswith(" "):
                assert eval(code, namespace) == int(stated.group(1)), line  # noqa: S307 - an expression
                checked += 1
    assert checked >= 5
