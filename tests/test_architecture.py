"""The package's layers, read off every module's syntax tree: one direction of imports, no cycles.

core (SymPy and the standard library) -> numeric (numpy, C) -> oracle, tracing (torch) -> frontends.
An import counts when it runs at import time: module level, class bodies, ``try`` and
``if`` blocks, but not ``if TYPE_CHECKING:`` blocks nor function bodies (lazy imports).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "symconv"
LAYERS = {"core": 0, "numeric": 1, "oracle": 2, "tracing": 2, "frontends": 3}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _eager_statements(body: list[ast.stmt]):
    """Statements run when the module is imported (function bodies and TYPE_CHECKING blocks excluded)."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _eager_statements(node.orelse)
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(node, field, None)
            if isinstance(inner, list):
                yield from _eager_statements([n for n in inner if isinstance(n, ast.stmt)] +
                                             [s for h in inner if isinstance(h, ast.ExceptHandler) for s in h.body])


def imports_of(name: str) -> set[str]:
    """Absolute names a module imports at import time (symconv modules resolved to the module itself)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _eager_statements(ast.parse(path.read_text()).body):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            if target == "__future__":
                continue
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES}
    return {n for n in found if n in MODULES} | {n.split(".")[0] for n in found if not n.startswith("symconv")}


GRAPH = {name: imports_of(name) for name in MODULES}


def closure(name: str) -> set[str]:
    """Everything importing ``name`` runs, parent packages' ``__init__`` included."""
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        parts = current.split(".")
        parents = [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += [n for n in GRAPH.get(current, ()) if n not in seen] + [p for p in parents if p in MODULES]
    return seen


def layer_of(name: str) -> int | None:
    parts = name.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_every_subpackage_is_a_known_layer():
    subpackages = {p.parent.name for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE}
    assert subpackages == set(LAYERS)
    assert len(MODULES) > 30 and all(GRAPH[n] is not None for n in MODULES)


def test_imports_go_down_the_layers_only():
    edges = 0
    for name, targets in GRAPH.items():
        here = layer_of(name)
        for target in targets:
            there = layer_of(target) if target.startswith("symconv.") else None
            if here is None or there is None:
                continue
            edges += 1
            assert there <= here, f"{name} (layer {here}) imports {target} (layer {there})"
    assert edges > 40


def test_no_import_cycles():
    internal = {n: {t for t in GRAPH[n] if t in MODULES} for n in MODULES}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in internal[node]:
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in MODULES:
        if name not in state:
            visit(name, [name])
    assert len(state) == len(MODULES)


def test_the_core_never_reaches_numpy_or_torch():
    core = [n for n in MODULES if layer_of(n) == 0]
    assert len(core) >= 10
    for name in core:
        reached = closure(name)
        assert not reached & {"numpy", "torch"}, f"{name} reaches {reached & {'numpy', 'torch'}}"
    # and the counting path loads neither SymPy nor numpy: only generated Python and C
    for name in ("symconv.numeric.layer", "symconv.numeric.layer_counts"):
        assert not closure(name) & {"numpy", "sympy", "torch"}, name


def test_only_the_torch_side_and_front_ends_import_torch():
    for name in MODULES:
        if "torch" in GRAPH[name]:
            assert layer_of(name) in (2, 3), name


def test_the_graph_detects_a_wrong_arrow():
    # The checker itself can fail: the numeric layer does import the core.
    assert "symconv.core.errors" in GRAPH["symconv.numeric.layer"]
    assert layer_of("symconv.numeric.layer") > layer_of("symconv.core.errors")
    assert "numpy" in closure("symconv.numeric.compile")


def test_importing_the_core_loads_neither_numpy_nor_torch():
    core = " ".join(f"import {n};" for n in MODULES if layer_of(n) == 0)
    code = f"import sys; {core} print(sorted(m for m in ('numpy', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_package_lists_its_public_names_and_each_loads():
    # dir(symconv) listed what the package imports for itself (importlib, Any, TYPE_CHECKING)
    code = ("import symconv, sys; names = dir(symconv); public = [n for n in names if not n.startswith('_')]; "
            "print(public == sorted(symconv.__all__), '__version__' in names, "
            "all(getattr(symconv, n) is not None for n in public))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "True"]
