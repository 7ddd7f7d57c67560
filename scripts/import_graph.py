"""Print harness' import graph: package-level edges, then every module's harness imports.

    .venv/bin/python scripts/import_graph.py [--modules]

Imports inside functions count too (they are still dependencies). Exits 1 on a cycle.
tests/test_architecture.py uses these functions to check the layering.
"""

from __future__ import annotations

import ast
import graphlib
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "backbones")


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of harness and backbones."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the harness modules it imports, at module level or inside functions."""
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from harness.pipeline import tfops` imports the module harness.pipeline.tfops.
                targets = [
                    f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known
                ]
                targets = targets or [node.module]
            for target in targets:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    # A package __init__ importing its own submodules is how click registers commands.
    for name in graph:
        graph[name] -= {
            m for m in graph[name] if m.startswith(name + ".") and known[name].name == "__init__.py"
        }
    return graph


def package_of(module: str) -> str:
    """``harness.pipeline.cache`` -> ``harness.pipeline``; top-level modules stand alone."""
    return ".".join(module.split(".")[:2])


def main() -> int:
    graph = import_graph()
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        for target in targets:
            a, b = package_of(module), package_of(target)
            if a != b:
                packages[a].add(b)
    print("package-level imports:")
    for package in sorted(packages):
        print(f"  {package} -> {', '.join(sorted(packages[package]))}")
    if "--modules" in sys.argv:
        print("module imports:")
        for module in sorted(graph):
            print(f"  {module} -> {', '.join(sorted(graph[module])) or '-'}")
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        print(f"CYCLE: {' -> '.join(exc.args[1])}")
        return 1
    print(f"{len(order)} modules, {sum(map(len, graph.values()))} import edges, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
