"""The package's shape: imports run one way, no cycles, modules of readable size."""

import ast
import graphlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Layers, lowest first: a module may import its own layer's modules and lower ones.
LAYERS = [
    ("harness", "harness.errors", "harness.atomic", "harness.schema", "harness.spec", "harness.registry"),
    ("harness.pipeline", "backbones"),
    ("harness.deploy",),
    ("harness.workflow",),
    ("harness.bench", "harness.results"),
    ("harness.cli", "harness.__main__"),
]


def _load_script():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_script = _load_script()
modules, import_graph = _script.modules, _script.import_graph


def layer(module: str) -> int:
    best = (-1, -1)
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                best = max(best, (len(prefix), rank))
    assert best[1] >= 0, f"{module} is in no layer"
    return best[1]


def test_import_graph_is_acyclic():
    graph = import_graph()
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_imports_run_one_way_from_the_cli_down():
    graph = import_graph()
    upward = [
        f"{a} -> {b}"
        for a, targets in graph.items()
        for b in targets
        if layer(b) > layer(a) and a != "harness.cli"
    ]
    assert not upward, "imports against the layering:\n" + "\n".join(upward)


def test_the_core_does_not_import_keras_hub_or_plugins():
    """Keras and TF Hub specifics live in backbones/ (and deploy's Keras-only bias correction)."""
    core = [
        n for n in modules() if n.startswith(("harness.pipeline", "harness.registry", "harness.workflow"))
    ]
    for name in core:
        for node in ast.walk(ast.parse(modules()[name].read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                bad = [
                    n
                    for n in names
                    if n.split(".")[0] in ("keras", "tensorflow_hub", "tf_keras", "backbones")
                ]
                assert not bad, f"{name} imports {bad}"


def test_no_module_is_over_300_lines():
    long = {n: len(p.read_text().splitlines()) for n, p in modules().items()}
    assert {n: c for n, c in long.items() if c > 300} == {}


def test_every_module_imports_and_the_cli_without_tensorflow():
    names = sorted(n for n in modules() if n != "harness.__main__")
    code = (
        "import importlib, sys\n"
        "import harness.cli, harness.schema, harness.results.store\n"
        "assert 'tensorflow' not in sys.modules and 'pandas' not in sys.modules\n"
        "assert 'ray' not in sys.modules\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_the_cli_imports_nothing_from_the_pipeline():
    """Commands parse flags into the plan and call the workflow; the stages are its business."""
    graph = import_graph()
    reaching = [f"{a} -> {b}" for a, bs in graph.items() if a.startswith("harness.cli") for b in bs]
    assert [e for e in reaching if "harness.pipeline" in e] == []


def test_each_choice_is_spelled_once_in_the_plan():
    """Weights, runtimes and retrain.py's quantized names are settled in harness.plan (and
    declared by the plugins in backbones/), not compared as strings down the stack. The timing
    script is exempt: it runs alone on remote machines, where harness is not installed."""
    spelled = {}
    for name, path in modules().items():
        if name.startswith(("harness.plan", "backbones")) or name == "harness.deploy.probe":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in ("random", "litert", "_quantized"):
                spelled.setdefault(name, []).append(node.value)
    assert spelled == {}
