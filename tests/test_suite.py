"""End to end: a real asv run of a small part of the suite, in a temporary copy of the repository."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qbench import cases
from qbench.analysis.results import load_results

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1024, 16384)
LAYER = "4x64x32"  # one small linear layer: the shape axis travels through asv and the report
PLOT_FILES = (
    "throughput.png",
    "speedup.png",
    "memory.png",
    "accuracy.png",
    "threads.png",
    "history.png",
    "side_by_side.png",
)

BROKEN = """
class Broken:
    def time_broken(self):
        raise RuntimeError("this benchmark is broken on purpose")
"""


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _copy_repo(dest: Path) -> Path:
    """The working tree (tracked and untracked, not ignored) as a fresh one-commit repository."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for rel in listed:
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    _git(dest, "init", "-q", "-b", "main")
    _git(dest, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    _git(dest, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "snapshot")
    return dest


def run_qbench(repo: Path, home: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``python -m qbench ARGS`` in ``repo``, with its own HOME (asv keeps its machine file there)."""
    return subprocess.run(
        [sys.executable, "-m", "qbench", *args],
        cwd=repo,
        env={**os.environ, "HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=1200,
    )


def _qbench(repo: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"QBENCH_SIZES": ",".join(map(str, SIZES)), "QBENCH_THREADS": "1,2", "QBENCH_SHAPES": LAYER}
    return run_qbench(repo, home, *args, env=env)


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory):
    repo = _copy_repo(tmp_path_factory.mktemp("repo"))
    home = tmp_path_factory.mktemp("home")
    (repo / "benchmarks" / "benchmarks" / "bench_broken.py").write_text(BROKEN)
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a broken benchmark")
    bench = (
        r"Quantize\.time_run|Sum\.time_run|Bandwidth\.time_run|calibrate\.Accuracy\.track_sqnr|Footprint"
        r"|Memory\.track_extra|Matmul\.time_run"
    )
    first = _qbench(repo, home, "run", "--quick", "--machine", "testbox", "-b", bench + "|Broken")
    # A second commit, so the report has history.
    (repo / "README.md").write_text((repo / "README.md").read_text() + "\n")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "touch")
    second = _qbench(repo, home, "run", "--quick", "--machine", "testbox", "-b", bench + "|SideBySide")
    return repo, first, second


@pytest.mark.slow
def test_failed_benchmark_is_named_and_report_still_built(suite_run):
    repo, first, _ = suite_run
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-3000:]
    assert "bench_broken.Broken.time_broken" in first.stderr
    assert "done" in first.stdout and "elapsed" in first.stdout  # progress was shown
    assert "report: " in first.stdout and "index.html" in first.stdout


@pytest.mark.slow
def test_results_dataframe_has_every_kernel_dtype_and_size(suite_run):
    repo, _, second = suite_run
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    df = load_results(repo / ".asv" / "results", machine="testbox")
    timed = df[df["benchmark"].str.endswith("time_run") & (df["status"] == "ok")]
    assert {"quantize", "sum", "copy", "read", "write"} <= set(timed["kernel"])
    assert {"float32", "uint8"} <= set(timed.loc[timed["kernel"] == "sum", "dtype"])
    assert set(timed.loc[timed["kernel"] == "quantize", "dtype"]) == set(cases.KERNELS["quantize"].quick_dtypes)
    for kernel in ("quantize", "sum", "copy"):
        assert set(timed.loc[timed["kernel"] == kernel, "size"]) == set(SIZES), kernel
    assert set(timed["threads"]) == {1, 2} and {"qbench", "numpy"} <= set(timed["impl"])
    assert df["commit"].nunique() == 2
    # The linear layers: swept by the shape QBENCH_SHAPES gave, every variant, at 1 thread (the quick grid).
    layer = timed[timed["kernel"] == "matmul"]
    # MatMulNBits with float activations is timed as a matrix-vector product only (M = 1): skipped at this shape.
    variants = set(cases.MATMUL.quick_dtypes) - {"nbits4", "nbits8"}
    assert set(layer["param_shape"]) == {LAYER} and set(layer["dtype"]) == variants
    assert set(layer["threads"]) == {1}


@pytest.mark.slow
def test_side_by_side_ratios(suite_run):
    from qbench.report import side_by_side_table

    repo, _, second = suite_run
    df = load_results(repo / ".asv" / "results", machine="testbox")
    rows = df[df["benchmark"].str.endswith("SideBySide.track_ratio")]
    status = rows.set_index(["param_comparison", "size", "threads"])["status"]
    # Every comparison of the grid was measured at every size and thread count, but for the ones the grid
    # skips: thread scaling at one thread, and the single-threaded NumPy reference at two.
    for c in cases.comparisons():
        if c.against in cases.PEER_IMPLS:
            continue  # optional libraries: measured where installed
        for size in SIZES:
            assert status[(c.name, size, 1)] == ("skipped" if c.kind == "threads" else "ok"), (c.name, size)
            assert status[(c.name, size, 2)] == ("skipped" if c.against == "numpy" else "ok"), (c.name, size)
    sbs = side_by_side_table(df)
    assert np.isfinite(sbs["ratio"]).all()
    # A share of a ceiling is measured against the probe at the same working set, for every kernel that has one.
    shares = sbs[sbs["kind"] == "ceiling"]
    measured_shares = set(shares["kernel"] + " " + shares["dtype"])
    assert {"sum uint8", "dot int8", "quantize uint8", "accumulate uint8+=uint8"} <= measured_shares
    assert "side by side" in second.stdout and "sum uint8 / float32" in second.stdout


@pytest.mark.slow
def test_report_pages_and_plots(suite_run):
    import matplotlib.image

    repo, _, _ = suite_run
    out = repo / "reports" / "latest"
    html = (out / "index.html").read_text()
    for name in PLOT_FILES:
        image = matplotlib.image.imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500, name
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert set(PLOT_FILES) <= set(pngs)
    assert html.count("data:image/png;base64,") == len(pngs)  # self-contained: every plot embedded
    assert "<title>qbench report</title>" in html
    # The machine header: this CPU's own SIMD features, the threading layer and the parallel switch in force.
    from qbench.measure.machine import describe_cpu

    simd = describe_cpu()["simd"]
    assert "<th>SIMD</th><td>" + (", ".join(simd) or "unknown") + "</td>" in html
    assert "Numba threading layer" in html and "parallel switch (parallel=None)" in html
    md = (out / "report.md").read_text()
    assert all(f"({name})" in md for name in PLOT_FILES)
    csv = (out / "results.csv").read_text().splitlines()
    assert csv[0].startswith("benchmark,") and len(csv) > 20


def test_run_refuses_a_dirty_tree_and_outside_a_checkout(tmp_path):
    repo = _copy_repo(tmp_path / "repo")
    (repo / "README.md").write_text("changed\n")
    dirty = _qbench(repo, tmp_path, "run", "--quick")
    assert dirty.returncode == 1 and "uncommitted changes (README.md)" in dirty.stderr
    assert "--allow-dirty" in dirty.stderr
    outside = tmp_path / "plain"
    outside.mkdir()
    nogit = _qbench(outside, tmp_path, "run", "--quick")
    assert nogit.returncode == 1 and "not inside a git checkout" in nogit.stderr


def test_report_on_an_empty_folder_is_a_clear_error(tmp_path):
    result = _qbench(tmp_path, tmp_path, "report", "--results", str(tmp_path / "nothing"))
    assert result.returncode == 1 and "no results folder" in result.stderr and "Traceback" not in result.stderr


def test_run_without_asv_says_how_to_install_it(monkeypatch):
    import importlib.util

    from qbench.measure import runner

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "asv" else real(name, *a))
    with pytest.raises(runner.RunError, match=r"pip install -e \"\.\[bench\]\""):
        runner.require_asv()


@pytest.mark.slow
def test_each_timed_point_records_what_else_used_the_cpus(suite_run):
    """The real run's busy records: a quiet second before and after, the busiest processes, a window per point."""
    from qbench.analysis import busy

    repo, _, second = suite_run
    df = load_results(repo / ".asv" / "results", machine="testbox")
    commit = df["commit"].iloc[-1]
    _, runs = busy.machine_records(repo / ".asv" / "results" / "testbox")
    phases = runs[commit[:8]][-1]
    assert {"before", "run", "after"} <= set(phases) and phases["run"]["seconds"] > 0
    timed = df[(df["commit"] == commit) & df["benchmark"].str.contains(r"\.(?:time_run|track_ratio)$")]
    timed = timed[timed["status"] == "ok"]
    assert len(timed) and timed["busy"].notna().all() and (timed["busy_error"] > 0).all()
    page = (repo / "reports" / "latest" / "index.html").read_text()
    assert "<div id='trust' class='" in page and ("Quiet machine" in page or "Busy machine" in page)
