"""The folders show the layers, and imports only point down.

doors (HTTP, WebSocket, dialects, admin, pages) → runtime (orchestrator, runs,
agents) → event log (numbering, writer, followers) → record (models, store,
services, selectors) → vocabulary (events, states, errors, factory, router).
docs/architecture.md explains each layer; this test keeps the code honest.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("streaming", "conversations", "valuecell_site")

# Most specific prefix wins. Lower number = lower layer.
VOCABULARY, RECORD, EVENTLOG, RUNTIME, DOORS, SITE = range(6)
LAYER_OF = {
    "streaming": VOCABULARY,  # events, states, stored, errors, responses, factory, router, encoders
    "conversations": RECORD,
    "streaming.eventlog": EVENTLOG,
    "streaming.runtime": RUNTIME,
    "streaming.agents": RUNTIME,
    "streaming.http": DOORS,
    "streaming.ws": DOORS,
    "streaming.dialects": DOORS,
    "conversations.admin": DOORS,
    "conversations.pages": DOORS,
    "conversations.management": DOORS,
    "valuecell_site": SITE,  # settings, urls, asgi, middleware: where the doors are mounted
}
LAYER_NAMES = ["vocabulary", "record", "event log", "runtime", "doors", "site"]
# Doors stand side by side: one door never reaches into another.
SEPARATE_DOORS = ("streaming.http", "streaming.ws", "streaming.dialects", "conversations.admin", "conversations.pages")
# Except for this deliberate reuse: the dialect doors are HTTP doors in other
# wire formats, and take the HTTP door's request plumbing as it is (who is
# asking, the JSON body, the resume point, the JSON error) rather than a copy.
# Nothing imports a dialect but the site; docs/architecture.md says why.
DOOR_PLUMBING = {("streaming.dialects", "streaming.http.auth"), ("streaming.dialects", "streaming.http.api"),
                 ("streaming.dialects", "streaming.http.sse")}
# The agents know nothing of runs: they only yield responses.
FORBIDDEN = {("streaming.agents", "streaming.runtime")}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


def _is_project(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer(name: str) -> int:
    best = max((prefix for prefix in LAYER_OF if _under(name, prefix)), key=len)
    return LAYER_OF[best]


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path, known: dict[str, Path]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(project imports at module level, project imports inside functions); TYPE_CHECKING ones are left out."""
    tree = ast.parse(path.read_text())
    top: list[tuple[str, int]] = []
    nested: list[tuple[str, int]] = []

    def targets(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        assert node.level == 0, f"{path}:{node.lineno}: relative import"
        base = node.module or ""
        # `from pkg import module` imports the module when it is one.
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking_block(child):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for name in targets(child):
                    if _is_project(name):
                        (nested if in_function else top).append((name, child.lineno))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return top, nested


@pytest.fixture(scope="module")
def graph() -> dict[str, list[tuple[str, int]]]:
    known = modules()
    return {name: imports(path, known)[0] for name, path in known.items()}


def test_imports_point_down_the_layers(graph):
    wrong = []
    for module, targets in graph.items():
        for target, line in targets:
            if layer(target) > layer(module):
                wrong.append(
                    f"{module}:{line} ({LAYER_NAMES[layer(module)]}) imports {target} ({LAYER_NAMES[layer(target)]})"
                )
    assert not wrong, "imports must point down:\n" + "\n".join(wrong)


def test_doors_do_not_reach_into_each_other_and_agents_know_no_runs(graph):
    wrong = []
    for module, targets in graph.items():
        for target, line in targets:
            for door in SEPARATE_DOORS:
                if _under(target, door) and not _under(module, door) and layer(module) == DOORS:
                    if any(_under(module, user) and target == used for user, used in DOOR_PLUMBING):
                        continue
                    wrong.append(f"{module}:{line} imports another door: {target}")
            for source, forbidden in FORBIDDEN:
                if _under(module, source) and _under(target, forbidden):
                    wrong.append(f"{module}:{line} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_project_import_hides_inside_a_function():
    known = modules()
    nested = [f"{name}:{line} imports {target}" for name, path in known.items() for target, line in imports(path, known)[1]]
    assert not nested, "import at module level (TYPE_CHECKING for types):\n" + "\n".join(nested)


def test_there_is_no_import_cycle(graph):
    edges = {module: {t for t, _ in targets if t in graph and t != module} for module, targets in graph.items()}
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_layer_map_can_see_a_wrong_import():
    """The checks above are not vacuous: a record module importing the runtime is caught."""
    assert layer("conversations.services") == RECORD
    assert layer("streaming.runtime.run") > layer("conversations.services")
    assert layer("streaming.http.sse") == DOORS and layer("streaming.events") == VOCABULARY
    assert layer("valuecell_site.urls") == SITE
    assert layer("streaming.dialects.agui") == DOORS and "streaming.dialects" in SEPARATE_DOORS
