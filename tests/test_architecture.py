"""The package's import structure: no import cycle, and imports only point down the layers
config -> data -> features -> model -> trainer -> pipeline (README "Architecture").

Both module-level and function-level imports count (an import moved into a function to dodge a cycle
is still a cycle). Run ``python -m pytest -q tests/test_architecture.py`` after moving code around.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "recbole_bundle"

#: Lowest layer first; a module may import modules of its own layer or below. The package root and
#: command-line entry modules (``__main__``) sit on top.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "_version", "io", "resources", "compat", "hub", "registry", "config", "distributed", "metrics"),
    ("data",),
    ("features",),
    ("model",),
    ("trainer",),
    ("graph_features", "tables", "plots", "quick_start", "inference", "complete", "ranking", "summary", "studies", "testing"),
]


def modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = f.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (anywhere in the file)."""
    mods = modules()
    graph = {}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = ".".join(parent[: len(parent) - node.level + 1] + ([base] if base else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    deps.add(full if full in mods else base)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1 or parts[-1] == "__main__":
        return len(LAYERS)  # the package root and entry points: the top
    for i, names in enumerate(LAYERS):
        if parts[1] in names:
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_architecture.py")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_imports_point_down_the_layers():
    graph = import_graph()
    upward = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps if layer(d) > layer(m))
    assert upward == []


def test_models_import_no_config_trainer_or_features():
    """A model gets its config values and prepared item features from its caller; it never builds a
    config, trains another model or loads feature files itself."""
    forbidden = ("recbole_bundle.config", "recbole_bundle.trainer", "recbole_bundle.features",
                 "recbole_bundle.graph_features", "recbole_bundle.quick_start", "recbole_bundle.registry")
    graph = import_graph()
    bad = sorted(f"{m} -> {d}" for m, deps in graph.items() if m.startswith("recbole_bundle.model")
                 for d in deps if d.startswith(forbidden))
    assert bad == []


def test_the_checker_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
