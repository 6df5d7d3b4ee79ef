"""No function in the application code is over 80 lines.

A long function hides the steps it takes; split it where the steps are
(`Orchestrator.submit` reads as: validate, then start a conversation, answer a
waiting run, or start the next run). Migrations are generated and exempt.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("streaming", "conversations", "valuecell_site")
LIMIT = 80


def long_functions(source: str, limit: int = LIMIT) -> list[tuple[str, int]]:
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > limit:
                found.append((node.name, length))
    return found


def test_no_function_is_over_80_lines():
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for name, length in long_functions(path.read_text()):
                offenders.append(f"{path.relative_to(ROOT)}: {name} ({length} lines)")
    assert not offenders, "functions over 80 lines:\n" + "\n".join(offenders)


def test_the_check_sees_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    assert long_functions(f"async def long():\n{body}\n") == [("long", LIMIT + 1)]
    assert long_functions("def short():\n    return 1\n") == []
