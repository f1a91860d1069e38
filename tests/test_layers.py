"""The import flow runs one way: kernels -> api -> cases -> results/regress -> report/runner -> cli.

A module may import from its own layer or a lower one, never a higher one, function-level
imports included: the suite loads ``qbench.cases`` against older installed commits, and the
library must import without the analysis layer (pandas, matplotlib, asv).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "qbench"

#: Layer of each module (a package's modules share its layer), lowest first.
LAYERS = {
    "qbench.kernels": 0,
    "qbench.params": 0,
    "qbench._views": 0,
    "qbench.metrics": 0,
    "qbench.timing": 0,
    "qbench._asv": 0,
    "qbench": 1,
    "qbench.reference": 1,
    "qbench.calibrate": 1,
    "qbench.tuning": 1,
    "qbench.machine": 1,
    "qbench.api": 1,
    "qbench.matmul": 1,
    "qbench.ggml": 1,
    "qbench.blocks": 1,
    "qbench.peers": 1,
    "qbench.demo": 1,
    "qbench.modelfile": 1,
    "qbench.synthetic": 1,
    "qbench.__main__": 5,
    "qbench.cases": 2,
    "qbench.tune": 3,
    "qbench.results": 3,
    "qbench.regress": 3,
    "qbench.modelscan": 3,
    "qbench.modeltime": 3,
    "qbench.report": 4,
    "qbench.runner": 4,
    "qbench.cli": 5,
}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(name: str) -> int:
    while name not in LAYERS:
        if "." not in name:
            raise KeyError(f"no layer is named for {name}")
        name = name.rpartition(".")[0]
    return LAYERS[name]


def _imports(path: Path, module: str) -> list[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            found += [f"{base}.{a.name}" if base == "qbench" else base for a in node.names]
    return [f for f in found if f == "qbench" or f.startswith(("qbench.", "benchmarks"))]


MODULES = sorted(ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_runs_back_up(path):
    module = _module(path)
    for target in _imports(path, module):
        assert not target.startswith("benchmarks"), f"{module} imports the benchmark suite ({target})"
        assert layer(target) <= layer(module), f"{module} (layer {layer(module)}) imports {target} ({layer(target)})"


def test_the_check_can_fail():
    assert layer("qbench.report.tables") > layer("qbench.cases.rules") > layer("qbench.api")
    assert "qbench.report" in _imports(ROOT / "cli.py", "qbench.cli")


def test_every_module_is_placed():
    for path in MODULES:
        layer(_module(path))  # raises KeyError for a module no layer names
