"""The package's layers hold: no module imports from a layer above its own, and no two modules import each other.

Every import statement counts, those inside functions too: a lazy import is still a dependency. The library
(``ops`` and below) must import without the analysis stack (pandas, matplotlib, asv), and nothing in ``qbench``
imports the benchmark suite: the suite loads ``qbench.cases`` against older installed commits.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "qbench"

#: Bottom to top; a module may import from its own layer and the layers before it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("qbench.kernels", "qbench.cpu"),
    ("qbench.ops",),
    ("qbench.reference", "qbench.peers", "qbench"),
    ("qbench.cases",),
    ("qbench.measure",),
    ("qbench.analysis",),
    ("qbench.model",),
    ("qbench.report",),
    ("qbench.cli", "qbench.__main__"),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def layer(name: str) -> int:
    """The rank of the longest prefix of ``name`` in :data:`LAYERS`."""
    best, rank = -1, None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    if rank is None:
        raise AssertionError(f"{name} belongs to no layer: add it to LAYERS")
    return rank


def statements(name: str) -> list[tuple[str, list[str]]]:
    """(module, names imported from it) of every import statement in ``name``, relative ones resolved."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((base, [a.name for a in node.names]))
    return found


def imported(name: str) -> set[str]:
    """Every top-level package ``name`` imports from."""
    return {base.split(".")[0] for base, _ in statements(name)}


def imports(name: str) -> set[str]:
    """The qbench modules ``name`` imports (a ``from X import y`` that names a module counts as that module)."""
    found = set()
    for base, names in statements(name):
        found.update(f"{base}.{n}" if f"{base}.{n}" in MODULES else base for n in names or [""])
    found.discard(name)
    return {m for m in found if m in MODULES}


GRAPH = {name: imports(name) for name in MODULES}


def test_every_module_has_a_layer():
    for name in MODULES:
        layer(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_from_a_layer_above(name):
    upward = sorted(t for t in GRAPH[name] if layer(t) > layer(name))
    assert not upward, f"{name} (layer {layer(name)}) imports from layers above it: {upward}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_benchmark_suite_and_no_analysis_stack_below_it(name):
    roots = imported(name)
    assert "benchmarks" not in roots, f"{name} imports the benchmark suite"
    if layer(name) <= layer("qbench.ops"):
        heavy = roots & {"pandas", "matplotlib", "asv"}
        assert not heavy, f"{name} is library code and imports {sorted(heavy)}"


def test_no_import_cycles():
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(GRAPH[node]):
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_check_sees_an_upward_import_and_a_cycle():
    """The walk itself can fail: a kernel importing the CLI, and a pair importing each other."""
    assert layer("qbench.kernels.quantize") < layer("qbench.cli")
    assert "qbench.ops.tuning" in GRAPH["qbench.ops.convert"]
    assert "qbench.kernels.quantize" in GRAPH["qbench.ops.convert"]  # a `from qbench.kernels import quantize`


def test_modules_stay_short():
    """About 400 lines at most: a module a reader takes in one sitting."""
    long = {n: len(p.read_text().splitlines()) for n, p in MODULES.items()}
    assert not {n: k for n, k in long.items() if k > 420}, long


def test_public_modules_keep_their_first_import_paths():
    import importlib

    import qbench

    for old, new in {
        "api": "qbench.ops",
        "blocks": "qbench.ops.blocks",
        "calibrate": "qbench.ops.calibrate",
        "ggml": "qbench.ops.ggml",
        "matmul": "qbench.ops.matmul",
        "metrics": "qbench.ops.metrics",
        "params": "qbench.ops.params",
    }.items():
        assert importlib.import_module(f"qbench.{old}") is importlib.import_module(new)
    from qbench.calibrate import calibrate
    from qbench.params import QuantParams

    assert calibrate is qbench.calibrate and QuantParams is qbench.QuantParams
    assert qbench.blocks.calibrate_blocks is qbench.ops.blocks.calibrate_blocks
    assert qbench.api.quantize is qbench.quantize
