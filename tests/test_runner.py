"""The runner without asv: the progress parser on a real asv log, the asv arguments, git and machine checks."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qbench.measure import runner
from qbench.measure.progress import TOTAL, progress_for
from qbench.measure.runner import rounds_file
from qbench.measure.timing import clock

LOG = Path(__file__).parent / "data" / "asv-run.log"


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    """A git checkout with an asv.conf.json and one commit."""
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.email", "t@example.com")
    _git(root, "config", "user.name", "t")
    (root / "asv.conf.json").write_text("{}")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "one")
    return root


def test_progress_parser_on_an_asv_log(monkeypatch, tmp_path):
    lines = LOG.read_text().splitlines()
    shutil.copytree(Path(__file__).parent / "data" / "quick-run", tmp_path / ".asv" / "results")
    monkeypatch.setattr(runner, "_stream", lambda cmd, root, env, log: iter(lines))
    echoed = []
    failed, seconds = runner.run_asv(["--quick"], tmp_path, {}, "x.log", echo=echoed.append)
    meta = json.loads((tmp_path / ".asv" / "results" / "benchmarks.json").read_text())
    sets = {n: int(np.prod([len(p) for p in b["params"]])) for n, b in meta.items() if isinstance(b, dict)}
    assert failed == ["bench_calibrate.Calibrate.time_calibrate"] and seconds >= 0
    assert f"29 benchmarks to run, {sum(sets.values())} parameter sets" in echoed
    progress = [e for e in echoed if e.startswith("[")]
    # Every benchmark finishes, the parameterized ones with "ok", the others with their value.
    total = sum(sets.values())
    assert progress[-1].startswith(f"[100.0%] 29/29 benchmarks done ({total}/{total} parameter")
    assert "estimating" in progress[0] and "left" in progress[-1]
    after_compile = next(e for e in progress if "bench_compile.track_compile_quantize_seconds" in e)
    done = sum(sets[n] for n in sets if n < "bench_compile.u")  # the log runs benchmarks in name order
    assert f"({done}/" in after_compile and "568ms" in after_compile
    assert not any("=====" in e for e in echoed)  # asv's tables stay in the log
    assert not any(re.search(r"\[\s*\d+\.\d+%\] ·", e) for e in echoed)  # asv's own percentages too
    assert any(e.endswith("For qbench commit 40a34056 <main>:") for e in echoed)


def test_progress_counts_a_bench_filter_and_rounds_once(tmp_path, monkeypatch):
    """The gate's case: five interleaved rounds, whose results asv logs only in the last round."""
    results = tmp_path / ".asv" / "results"
    shutil.copytree(Path(__file__).parent / "data" / "quick-run", results)
    meta = json.loads((results / "benchmarks.json").read_text())
    for name in ("bench_quantize.Quantize.time_run", "bench_quantize.Quantize.track_gbps"):
        meta[name]["rounds"] = 5
    (results / "benchmarks.json").write_text(json.dumps(meta))
    line = TOTAL.search("Running 4 total benchmarks (2 commits * 1 environments * 2 benchmarks)")
    args = ["HASHFILE:x", "--interleave-rounds", "--bench", r"Quantize\."]
    progress = progress_for(line, tmp_path, args)
    # Quantize's time_run and track_gbps (not Dequantize's, not QuantizeAxis'): 5 sizes x 2 dtypes x 2 threads
    # x 2 impls each, for 2 commits; five rounds each, not five times as many benchmarks.
    assert set(progress.weights) == {"bench_quantize.Quantize.time_run", "bench_quantize.Quantize.track_gbps"}
    assert progress.total == 2 * 2 and progress.total_sets == (40 + 40) * 2 and progress.rounds == 5
    unknown = progress_for(line, tmp_path / "elsewhere", args)
    assert unknown.total == 4 and unknown.total_sets == 4 and unknown.rounds == 1  # no benchmarks.json

    lines = ["· Running 4 total benchmarks (2 commits * 1 environments * 2 benchmarks)"]
    lines += [f"[{pct:5.1f}%] ··· Running (bench_quantize.Quantize.time_run--)" for pct in (10.0, 40.0, 70.0)]
    lines += ["[ 82.5%] ··· For qbench commit 1a2b3c4d <main>:"]
    for pct, name in ((85.0, "time_run"), (90.0, "track_gbps"), (95.0, "time_run"), (100.0, "track_gbps")):
        lines.append(f"[{pct:5.1f}%] ··· bench_quantize.Quantize.{name}   ok")
    monkeypatch.setattr(runner, "_stream", lambda cmd, root, env, log: iter(lines))
    echoed = []
    runner.run_asv(args, tmp_path, {}, "x.log", echo=echoed.append)
    assert "4 benchmarks to run, 160 parameter sets, 5 rounds each" in echoed
    shown = [e for e in echoed if e.startswith("[")]
    assert shown[1].startswith("[ 40.0%] 0/4 benchmarks done") and "left" in shown[1]
    assert shown[-1].startswith("[100.0%] 4/4 benchmarks done (160/160 parameter sets x 5 rounds)")


def test_stream_writes_the_log_and_reports_a_failed_asv(tmp_path):
    log = tmp_path / "a.log"
    ok = [sys.executable, "-c", "print('one'); print('two')"]
    assert list(runner._stream(ok, tmp_path, None, log)) == ["one", "two"] and log.read_text() == "one\ntwo\n"
    some_failed = [sys.executable, "-c", "print('x'); raise SystemExit(2)"]
    assert list(runner._stream(some_failed, tmp_path, None, log)) == ["x"]  # asv's "some benchmarks failed"
    broken = [sys.executable, "-c", "print('boom'); raise SystemExit(3)"]
    with pytest.raises(runner.RunError, match=r"(?s)status 3 .*boom"):
        list(runner._stream(broken, tmp_path, None, log))


def test_checkout_checks(repo, tmp_path):
    assert runner.checkout_root(repo) == repo
    bare = tmp_path / "plain"
    bare.mkdir()
    with pytest.raises(runner.RunError, match="not inside a git checkout"):
        runner.checkout_root(bare)
    (repo / "asv.conf.json").unlink()
    with pytest.raises(runner.RunError, match="has no asv.conf.json"):
        runner.checkout_root(repo)


def test_dirty_tree_is_refused_unless_allowed(repo, monkeypatch):
    (repo / "new file.txt").write_text("x")
    assert runner.dirty_files(repo) == ["new file.txt"]
    with pytest.raises(runner.RunError, match="uncommitted changes \\(new file.txt\\).*--allow-dirty"):
        runner.run_suite(quick=True, bench=None, threads=None, allow_dirty=False, root=repo)
    calls = {}
    monkeypatch.setattr(runner, "_prepare", lambda root, machine: (root, "box"))

    def fake_asv(args, root, env, log, echo):
        calls.update(args=args, env=env)
        return [], 1.0

    monkeypatch.setattr(runner, "run_asv", fake_asv)
    out = runner.run_suite(quick=True, bench="Sum", threads="1,2", allow_dirty=True, root=repo, echo=lambda s: None)
    head = runner.git(repo, "rev-parse", "HEAD")
    assert out.commit == head and out.machine == "box" and out.failed == []
    assert calls["args"] == ["--python=same", f"--set-commit-hash={head}", "--machine", "box", "--bench", "Sum"]
    assert calls["env"]["QBENCH_QUICK"] == "1" and calls["env"]["QBENCH_THREADS"] == "1,2"
    # The suite keeps its per-round ratios where the results loader reads them.
    assert calls["env"]["QBENCH_ROUNDS_FILE"] == str(rounds_file(repo / ".asv" / "results", "box", head))


def test_benchmark_commits_interleaves_rounds_with_fixed_samples(repo, monkeypatch):
    _git(repo, "commit", "-q", "--allow-empty", "-m", "two")
    calls = {}
    monkeypatch.setattr(runner, "_prepare", lambda root, machine: (root, "box"))
    monkeypatch.setattr(
        runner, "run_asv", lambda args, root, env, log, echo: calls.update(args=args, env=env) or ([], 2.0)
    )
    out = runner.benchmark_commits(["HEAD~1", "main"], quick=True, bench="Sum", rounds=5, root=repo)
    hashes = out.commit.split(",")
    assert hashes == [runner.git(repo, "rev-parse", r) for r in ("HEAD~1", "HEAD")]
    args = calls["args"]
    assert args[0] == f"HASHFILE:{repo / '.asv' / 'qbench-hashes.txt'}"
    assert (repo / ".asv" / "qbench-hashes.txt").read_text().split() == hashes
    assert "--interleave-rounds" in args and "--record-samples" in args
    # Rounds reach the timed benchmarks through the environment: asv's "-a rounds=" would also repeat the
    # instruction counts, which are the same in every round.
    assert calls["env"]["QBENCH_ROUNDS"] == "5" and not any(a.startswith("rounds=") for a in args)
    assert args[args.index(f"repeat={runner.SAMPLES_PER_ROUND}") - 1] == "-a"
    # With no pattern, compare and history measure what a run measures: not the gate's instruction counts.
    runner.benchmark_commits(["HEAD~1", "main"], quick=True, bench=None, rounds=5, root=repo)
    assert calls["args"][calls["args"].index("--bench") + 1] == runner.RUN_BENCH
    runner.benchmark_commits(["HEAD~1", "main"], quick=True, bench=None, rounds=5, root=repo, gate=True)
    assert calls["args"][calls["args"].index("--bench") + 1] == runner.GATE_BENCH
    with pytest.raises(runner.UsageError, match="unknown revision 'nope'"):
        runner.benchmark_commits(["nope"], quick=True, bench=None, rounds=2, root=repo)


def test_machine_registration(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".asv-machine.json").write_text(json.dumps({"known": {}}))
    ran = []

    def fake_run(cmd, **kw):
        ran.append(cmd)
        return subprocess.CompletedProcess(cmd, 1 if "bad" in cmd else 0, "", "asv says no")

    monkeypatch.setattr(runner.subprocess, "run", fake_run)
    runner.ensure_machine(tmp_path, "known")
    assert ran == []
    runner.ensure_machine(tmp_path, "new")
    assert ran[-1][-4:] == ["machine", "--yes", "--machine", "new"]
    with pytest.raises(runner.RunError, match="asv says no"):
        runner.ensure_machine(tmp_path, "bad")
    assert runner.publish_asv(tmp_path) == (tmp_path / ".asv" / "html", "")
    monkeypatch.setattr(
        runner.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "", "no results")
    )
    assert runner.publish_asv(tmp_path) == (None, "no results")


def test_machine_info_is_recorded_beside_the_results(tmp_path):
    path = runner.write_machine_info(tmp_path, "box")
    data = json.loads(path.read_text())
    assert path == tmp_path / ".asv" / "results" / "box" / "qbench-machine.json"
    assert data["machine"] == "box" and data["cores"] >= 1 and "parallel_switch" in data


def test_clock():
    assert clock(0) == "00:00" and clock(61.9) == "01:01" and clock(3599) == "59:59" and clock(3723) == "1:02:03"


@pytest.mark.parametrize(
    "variable,value",
    [
        ("QBENCH_SIZES", "abc"),
        ("QBENCH_SIZES", "1024,-5"),
        ("QBENCH_THREADS", "0"),
        ("QBENCH_THREADS", "1.5"),
        ("QBENCH_SHAPES", "1x4096"),
        ("QBENCH_SHAPES", "1x0x64"),
    ],
)
def test_a_bad_grid_variable_stops_before_anything_starts(repo, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)

    def must_not_start(*a, **k):
        raise AssertionError("started on a bad grid variable")

    monkeypatch.setattr(runner, "_prepare", must_not_start)
    with pytest.raises(runner.UsageError, match=f"{variable} must list .* whole numbers >= 1.*{value!r}"):
        runner.run_suite(quick=True, bench=None, threads=None, allow_dirty=True, root=repo)
    with pytest.raises(runner.UsageError, match=variable):
        runner.benchmark_commits(["HEAD"], quick=True, bench=None, rounds=2, root=repo)


def test_a_bad_impls_variable_names_what_is_accepted(repo, monkeypatch):
    monkeypatch.setenv("QBENCH_IMPLS", "qbench,tensorflow")
    with pytest.raises(runner.UsageError, match="QBENCH_IMPLS names tensorflow; accepted: qbench, numpy"):
        runner.benchmark_commits(["HEAD"], quick=True, bench=None, rounds=2, root=repo)


def test_the_gate_grid_is_qbench_alone_at_one_cache_and_one_dram_size(monkeypatch):
    """Every family's gate grid: qbench only, 1 thread, 2**16 and 2**24 (or the two GEMV shapes); asv gets the
    gate's benchmark pattern, which takes every family's time_run and no probe, ratio or accuracy benchmark."""
    import re

    from qbench import cases

    for name, value in cases.grid.GATE.items():
        monkeypatch.setenv(name, value)
    for kernel in [*cases.KERNELS, "matmul"]:
        params, names = cases.family(kernel).grid()
        grid = dict(zip(names, params, strict=True))
        assert grid["impl"] == ["qbench"] and grid["threads"] == [1]
        assert grid.get("size", grid.get("shape")) in ([2**16, 2**24], ["1x1024x1024", "1x4096x11008"])
    pattern = re.compile(runner.GATE_BENCH)  # asv matches a parameterized benchmark as name(param, ...)
    for mine in ("bench_quantize.Quantize", "bench_matmul.Matmul", "bench_blocks.BlockDequantize"):
        assert pattern.search(f"{mine}.time_run(16384, uint8, 1, qbench)")
    assert pattern.search("bench_counts.Instructions.track_instructions(quantize:uint8)")
    # ... which a plain run leaves out, and keeps everything else.
    run = re.compile(runner.RUN_BENCH)
    assert not run.search("bench_counts.Instructions.track_instructions(quantize:uint8)")
    assert run.search("bench_quantize.Quantize.time_run(16384, uint8, 1, qbench)") and run.search("bench_compile.x")
    for other in (
        "bench_bandwidth.Bandwidth.time_run(16384, copy, 1)",
        "bench_blocks.BlockSideBySide.track_ratio(16384, x, 1)",
        "bench_matmul.MatmulSideBySide.track_ratio(1x1024x1024, x, 1)",
        "bench_compile.timeraw_import_qbench",
        "bench_memory.Memory.peakmem_run(16384, uint8)",
    ):
        assert not pattern.search(other)
