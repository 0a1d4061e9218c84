"""The package's imports flow one way: from the CLI down to constants (STYLE.md, issue 15).

The layers are written once, here, from the ground up. A module imports only from its own
layer or below, at module level or inside a function alike, and no chain of imports between
modules comes back to where it started. Failures name the offending import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import liser

LAYERS = [
    ("constants", "errors"),
    ("storage", "targets", "configs"),
    ("cluster", "workers", "corpora", "audio", "features", "folds", "model", "losses", "evaluate", "graph"),
    ("synth",),
    ("data",),
    ("teachers",),
    ("methods",),
    ("train",),
    ("tracking",),
    ("reports",),
    ("studies",),
    ("demo", "ui", "export"),
    ("cli",),
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}
ROOT = Path(liser.__file__).parent


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> list[tuple[str, int, str]]:
    """(module, line, imported liser module) for every import of the package, lazy ones included."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        module = _module(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "liser":
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.split(".")[0] == "liser"]
            else:
                continue
            for target in targets:
                if (ROOT.parent / target.replace(".", "/")).with_suffix(".py").exists() or (ROOT.parent / target.replace(".", "/") / "__init__.py").exists():
                    found.append((module, node.lineno, target))
    return found


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_top_level_module_has_a_layer():
    tops = {_top(_module(p)) for p in ROOT.rglob("*.py")} - {None}
    assert not tops - set(RANK), f"add these to LAYERS: {sorted(tops - set(RANK))}"


def test_no_upward_import():
    upward = [
        f"{m}:{line} imports {t} (layer {RANK[_top(t)]} is above {RANK[_top(m)]})"
        for m, line, t in _imports()
        if _top(m) and _top(t) and RANK[_top(t)] > RANK[_top(m)]
    ]
    assert not upward, "\n".join(upward)


def test_no_import_loop():
    graph: dict[str, dict[str, int]] = {}
    for m, line, t in _imports():
        if t != m and not m.startswith(t + "."):  # a package's own __init__ is not a loop
            graph.setdefault(m, {}).setdefault(t, line)
    loops, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in graph.get(node, {}):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt]
                loops.append(" -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:])) + f" -> {nxt}")
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not loops, "\n".join(loops)
