"""qbench compare and history on a temporary repository made from this one, with a slowdown injected."""

import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from qbench import cases
from tests.test_suite import _copy_repo, _git, run_qbench

LOOP = """        for i in range(xb.shape[0]):
            ob[i] = quantize_with(xb[i], scale, reciprocal, zero_point, qmin, qmax)
"""
SLOW_LOOP = """        for _ in range(3):  # injected slowdown: three passes
            for i in range(xb.shape[0]):
                ob[i] = quantize_with(xb[i], scale, reciprocal, zero_point, qmin, qmax)
"""
KERNEL = Path("qbench/kernels/quantize.py")
BENCH = r"bench_quantize\.Quantize\.time_run"


def _commit(repo: Path, message: str) -> str:
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", message)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()


def _qbench(repo: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    cache = os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))  # asv's env installs reuse it
    return run_qbench(repo, home, *args, env={"QBENCH_SIZES": "65536", "QBENCH_THREADS": "1", "PIP_CACHE_DIR": cache})


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """Commits: base, comment-only, 3x slower quantize, still slow (a comment), fixed again, README only."""
    repo = _copy_repo(tmp_path_factory.mktemp("repo"))
    home = tmp_path_factory.mktemp("home")
    src = (repo / KERNEL).read_text()
    assert LOOP in src
    _git(repo, "tag", "v-base")
    commits = {
        "base": subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    }
    (repo / KERNEL).write_text(src + "\n# A comment that changes nothing.\n")
    commits["comment"] = _commit(repo, "comment only")
    (repo / KERNEL).write_text(src.replace(LOOP, SLOW_LOOP))
    commits["slow"] = _commit(repo, "slow quantize")
    # A slowdown that stays for two commits: a one-commit spike between fast neighbours is, to asv's step
    # detection on four points, as likely noise as a step, and history is about levels that change.
    (repo / KERNEL).write_text(src.replace(LOOP, SLOW_LOOP) + "\n# Still slow.\n")
    commits["still slow"] = _commit(repo, "still slow")
    (repo / KERNEL).write_text(src)
    commits["fixed"] = _commit(repo, "fast again")
    (repo / "README.md").write_text((repo / "README.md").read_text() + "\nA line of documentation.\n")
    commits["docs"] = _commit(repo, "documentation only")
    return repo, home, commits


def _run(repo, home, *args):
    result = _qbench(repo, home, "compare", "--quick", "-b", BENCH, *args)
    return result, result.stdout + result.stderr


@pytest.mark.slow
def test_injected_slowdown_is_flagged(repo):
    path, home, c = repo
    result, text = _run(path, home, c["comment"], c["slow"], "--out", "reports/slow")
    assert result.returncode == 1, text[-4000:]
    assert "REGRESSION" in text and "quantize" in text and "slower" in text
    md = (path / "reports" / "slow" / "compare.md").read_text()
    assert "bench_quantize.Quantize.time_run" in md and "slower" in md
    assert (path / "reports" / "slow" / "compare.html").read_text().count("data:image/png;base64,") == 1


@pytest.mark.slow
def test_comment_only_change_is_not_flagged(repo):
    """At a factor of 1.5: on a shared 2-core machine, the median time of one 65536-value kernel moves by 10% and
    more between the processes of two commits that compile the same code (a run of CI saw x1.11 with the five
    rounds of each side apart), which is the machine, not the change; the 3x slowdown above is beyond any of it."""
    path, home, c = repo
    result, text = _run(path, home, "v-base", c["comment"], "--factor", "1.5")  # a tag works as BASE
    assert result.returncode == 0, text[-4000:]
    assert "0 slower" in text


@pytest.mark.slow
def test_improvement_is_reported_and_exits_zero(repo):
    path, home, c = repo
    result, text = _run(path, home, c["slow"], "main")
    assert result.returncode == 0, text[-4000:]
    assert "faster" in text and "0 slower" in text


@pytest.mark.slow
def test_history_marks_the_slow_commit(repo):
    path, home, c = repo
    result = _qbench(path, home, "history", "--quick", "-b", BENCH, "-n", "6")
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-4000:]
    # The slow commit is named as the start of a regression, and the fix as the start of an improvement,
    # each with its t statistic and the benchmark's noise; nothing is said of the README-only commit.
    lines = text.splitlines()
    assert any(line.startswith("regression") and c["slow"][:8] in line and "noise" in line for line in lines), text
    assert any(line.startswith("improvement") and c["fixed"][:8] in line for line in lines), text[-3000:]
    own = [line for line in lines if line.startswith(("regression", "improvement"))]
    assert not any(c["docs"][:8] in line or c["comment"][:8] in line for line in own), text[-3000:]
    page = (path / "reports" / "history" / "index.html").read_text()
    assert c["slow"][:8] in page and "data:image/png;base64," in page


def test_unknown_base_is_a_usage_error(tmp_path):
    repo = _copy_repo(tmp_path / "repo")
    result = _qbench(repo, tmp_path, "compare", "no-such-branch")
    assert result.returncode == 2
    assert "unknown revision 'no-such-branch'" in result.stderr


@pytest.mark.slow
def test_the_instruction_count_names_a_slower_kernel(repo, monkeypatch):
    """The gate's counter end to end: asv runs bench_counts at both commits (one callgrind process each), the
    comparison puts each count beside its kernel, and a 3x slower quantize is named by its instructions."""
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    path, home, c = repo
    monkeypatch.setenv("QBENCH_KERNELS", "quantize,dequantize,sum")  # three families of eleven, still end to end
    result = _qbench(path, home, "compare", "--quick", "-b", "bench_counts", c["comment"], c["slow"], "--out", "r/n")
    text = result.stdout + result.stderr
    assert result.returncode == 1, text[-4000:]
    table = pd.read_csv(path / "r" / "n" / "compare.csv").set_index("kernel")
    monkeypatch.setenv("QBENCH_QUICK", "1")  # the grid of the --quick run
    assert len(table) == len(cases.gate_points()) and set(table.index) == {"quantize", "dequantize", "sum"}
    slower = table[table["change"] == "slower"]
    assert list(slower.index) == ["quantize", "quantize"] and set(slower["decided"]) == {"instructions"}
    # Three passes over the values, not over the call's fixed cost (its checks, its first unaligned values): at
    # the quick grid's sizes that counted 2.48x and 2.52x.
    assert (slower["ratio"] > 2.0).all() and set(table.drop("quantize")["change"]) == {"same"}
    # Kernels that do not call quantize count the same instructions at both commits.
    assert table.drop(["quantize"])["ratio"].between(0.99, 1.01).all()
    assert "decided by instructions" in text
