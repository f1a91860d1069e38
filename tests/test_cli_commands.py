"""The subcommands in process, with asv replaced by canned results: exit codes, messages and pages."""

import json
import subprocess
import time

import pytest

from qbench import cli
from qbench.analysis.results import load_results
from qbench.measure import runner
from tests.test_analysis import COMMIT, RESULTS, copy_results, shifted_result
from tests.test_runner import _git


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A folder holding the canned results under .asv/results, taken as the checkout root."""
    copy_results(tmp_path)
    monkeypatch.setattr(runner, "checkout_root", lambda start=None: tmp_path)
    return tmp_path


def _outcome(commit=COMMIT, failed=(), machine="box"):
    return runner.RunOutcome(commit, machine, list(failed), 90.0)


def test_run_builds_the_report_and_prints_the_summary(checkout, monkeypatch, capsys):
    monkeypatch.setattr(runner, "run_suite", lambda **kw: _outcome())
    assert cli.main(["run", "--quick", "--out", "out"]) == 0
    out = capsys.readouterr().out
    assert "suite finished in 1.5 min" in out and f"report: {checkout / 'out' / 'index.html'}" in out
    assert "side by side, each ratio measured in one process" in out
    assert (checkout / "out" / "index.html").exists()


def test_run_exits_non_zero_naming_failed_benchmarks(checkout, monkeypatch, capsys):
    monkeypatch.setattr(runner, "run_suite", lambda **kw: _outcome(failed=["bench_x.X.time_run"]))
    assert cli.main(["run", "--out", "out"]) == 1
    assert "benchmarks failed: bench_x.X.time_run" in capsys.readouterr().err
    assert (checkout / "out" / "index.html").exists()  # built from the rest


def test_run_reports_a_run_error(checkout, monkeypatch, capsys):
    def refuse(**kw):
        raise runner.RunError("the working tree has uncommitted changes")

    monkeypatch.setattr(runner, "run_suite", refuse)
    assert cli.main(["run"]) == 1
    assert "qbench: error: the working tree has uncommitted changes" in capsys.readouterr().err


def test_report_and_readme_table(tmp_path, capsys):
    out = tmp_path / "page"
    assert cli.main(["report", "--results", str(RESULTS), "--out", str(out)]) == 0
    assert (out / "report.md").exists() and f"wrote {out / 'index.html'}" in capsys.readouterr().out
    assert cli.main(["report", "--results", str(RESULTS), "--readme-table"]) == 0
    assert "| quantize | uint8 | 2**14 |" in capsys.readouterr().out
    assert cli.main(["report", "--results", str(RESULTS), "--commit", "ffff", "--out", str(out)]) == 1
    assert "no results for commit ffff" in capsys.readouterr().err
    assert cli.main(["report", "--results", str(tmp_path / "none")]) == 1
    assert "no results folder" in capsys.readouterr().err


def test_report_of_several_machines_compares_them_and_machine_narrows(tmp_path, capsys):
    results = copy_results(tmp_path)
    (results / "other").mkdir()
    for f in (results / "box").iterdir():
        (results / "other" / f.name).write_text(f.read_text())
    assert cli.main(["report", "--results", str(results), "--out", str(tmp_path / "o")]) == 0
    assert "2 machines side by side" in capsys.readouterr().out
    assert (tmp_path / "o" / "box" / "index.html").exists() and (tmp_path / "o" / "other" / "index.html").exists()
    assert cli.main(["report", "--results", str(results), "--machine", "other", "--out", str(tmp_path / "n")]) == 0
    assert not (tmp_path / "n" / "other").exists() and (tmp_path / "n" / "index.html").exists()
    assert cli.main(["report", "--results", str(results), "--readme-table"]) == 2
    assert "--readme-table reads one machine; the results hold box, other" in capsys.readouterr().err


def _compare_with(checkout, monkeypatch, factor: float, bench: str):
    base, head = "a" * 40, "b" * 40
    now = int(time.time() * 1000) + 5000
    results = checkout / ".asv" / "results"
    shifted_result(results, base, 1.0, bench, now)
    shifted_result(results, head, factor, bench, now)
    monkeypatch.setattr(runner, "benchmark_commits", lambda revs, **kw: _outcome(f"{base},{head}"))
    return base, head


def test_compare_flags_a_slower_kernel(checkout, monkeypatch, capsys):
    base, head = _compare_with(checkout, monkeypatch, 3.0, "bench_accumulate.Sum.time_run")
    assert cli.main(["compare", "--quick", "-b", "time_run", base, head]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION:" in out and "(sum)" in out and "Busy machine" not in out
    page = checkout / "reports" / f"compare-{base[:8]}-{head[:8]}"
    assert (page / "compare.csv").exists()
    # The page leads with its verdict and the changed rows, before the rule and the chart.
    md = (page / "compare.md").read_text()
    verdict = md.index("## Verdict: REGRESSION: ")
    assert verdict < md.index("| rule |") < md.index("## Time ratios") and "0 faster, " in md[verdict:]
    assert md.index("| slower |", verdict) < md.index("| rule |")


def test_a_gate_on_a_busy_machine_says_so_beside_its_verdict(checkout, monkeypatch, capsys):
    base, head = _compare_with(checkout, monkeypatch, 1.0, "bench_accumulate.Sum.time_run")
    frame = load_results(checkout / ".asv" / "results")
    record = checkout / "busy.jsonl"
    lines = [{"phase": "before", "seconds": 1.0, "other": 0.9, "steal": 0.0, "uncertainty": 0.01}]
    for row in frame[frame["commit"] == head].drop_duplicates(["suite", "params"]).itertuples():
        params = json.loads(row.params)
        lines.append({"suite": row.suite, "params": params, "seconds": 1, "other": 1.0, "steal": 0.0, "uncertainty": 0})
    record.write_text("".join(json.dumps(line) + "\n" for line in lines))
    outcome = runner.RunOutcome(f"{base},{head}", "box", [], 90.0, record)
    monkeypatch.setattr(runner, "benchmark_commits", lambda revs, **kw: outcome)
    assert cli.main(["compare", base, head, "--out", "cmp"]) == 0
    out = capsys.readouterr().out
    assert out.index("0 slower, 0 faster") < out.index("Busy machine: other programs used the CPUs during")
    md = (checkout / "cmp" / "compare.md").read_text()
    assert md.index("**Warning.** Busy machine") < md.index("## Verdict: no regression; 0 slower, 0 faster")


def test_compare_passes_the_same_code(checkout, monkeypatch, capsys):
    base, head = _compare_with(checkout, monkeypatch, 1.0, "bench_accumulate.Sum.time_run")
    assert cli.main(["compare", base, head, "--out", "cmp"]) == 0
    assert "0 slower, 0 faster" in capsys.readouterr().out and (checkout / "cmp" / "compare.html").exists()


def test_compare_usage_errors(checkout, monkeypatch, capsys):
    assert cli.main(["compare", "main", "--rounds", "3"]) == 2
    assert "--rounds must be at least 4" in capsys.readouterr().err

    def unknown(revs, **kw):
        raise runner.UsageError("unknown revision 'nope'")

    monkeypatch.setattr(runner, "benchmark_commits", unknown)
    assert cli.main(["compare", "nope"]) == 2
    assert "unknown revision 'nope'" in capsys.readouterr().err
    monkeypatch.setattr(runner, "benchmark_commits", lambda revs, **kw: _outcome(f"{'c' * 40},{'d' * 40}"))
    assert cli.main(["compare", "c", "d"]) == 2  # nothing measured in this run at either commit
    assert "no benchmark was measured at both commits" in capsys.readouterr().err


def test_history_marks_a_step(tmp_path, monkeypatch, capsys):
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.email", "t@example.com")
    _git(root, "config", "user.name", "t")
    for i in range(4):
        if i == 2:  # the step's commit changes the package; the others change nothing measured
            (root / "qbench").mkdir()
            (root / "qbench" / "kernel.py").write_text("# slower\n")
            _git(root, "add", "qbench")
        _git(root, "commit", "-q", "--allow-empty", "-m", f"c{i}")
    hashes = subprocess.run(["git", "rev-list", "--reverse", "HEAD"], cwd=root, capture_output=True, text=True)
    hashes = hashes.stdout.split()
    results = copy_results(root)
    for i, h in enumerate(hashes):
        shifted_result(results, h, 1.0 if i < 2 else 3.0, "bench_accumulate.Sum.time_run", 0)
        path = results / "box" / f"{h[:8]}-existing-py_usr_bin_python3.json"
        data = json.loads(path.read_text())
        data["env_name"] = "virtualenv-py3.11"
        path.write_text(json.dumps(data))
    monkeypatch.setattr(runner, "checkout_root", lambda start=None: root)
    monkeypatch.setattr(runner, "benchmark_commits", lambda revs, **kw: _outcome(",".join(revs)))
    monkeypatch.setattr(runner, "publish_asv", lambda root: (None, "asv publish is not run in this test"))
    assert cli.main(["history", "-n", "4", "--out", "hist"]) == 0
    captured = capsys.readouterr()
    assert "asv publish failed" in captured.err
    steps = [line for line in captured.out.splitlines() if line.startswith("regression")]
    assert steps and all(hashes[2][:8] in line and "Sum.time_run" in line for line in steps)
    assert (root / "hist" / "steps.csv").exists()
    assert cli.main(["history", "nope..main"]) == 2
    assert "cannot list commits" in capsys.readouterr().err


def test_tune_refusals_and_show(monkeypatch, capsys):
    assert cli.main(["tune", "--show"]) == 0
    assert "tuning file: none (QBENCH_TUNING=off)" in capsys.readouterr().out
    assert cli.main(["tune", "--max-bytes", "10"]) == 1
    assert "below the smallest size" in capsys.readouterr().err
    import numba

    monkeypatch.setattr(numba, "get_num_threads", lambda: 1)
    assert cli.main(["tune"]) == 1
    assert "nothing to tune" in capsys.readouterr().err


def test_shared_flags_are_defined_once():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for name in ("run", "compare", "history"):
        flags = {s for a in sub[name]._actions for s in a.option_strings}
        assert {"-b", "--bench", "--quick", "--machine"} <= flags
    assert "--machine" in {s for a in sub["report"]._actions for s in a.option_strings}


@pytest.mark.parametrize(
    "argv,msg",
    [
        (["run", "--threads", "abc"], "argument --threads: expected thread counts like 1,4,16"),
        (["run", "--threads", "2,0"], "expected thread counts like 1,4,16"),
        (["demo", "--size", "-5"], "argument --size: expected a whole number >= 1, got -5"),
        (["demo", "--size", "0"], "expected a whole number >= 1, got 0"),
        (["demo", "--size", "1e6"], "expected a whole number >= 1, got '1e6'"),
        (["compare", "main", "--factor", "0.9"], "argument --factor: expected a time ratio above 1"),
        (["compare", "main", "--factor", "inf"], "expected a time ratio above 1"),
        (["compare", "main", "--rounds", "x"], "argument --rounds: expected a whole number"),
        (["history", "-n", "0"], "argument -n/--max-count: expected a whole number >= 1"),
        (["tune", "--passes", "0"], "argument --passes"),
        (["tune", "--max-bytes", "-1"], "argument --max-bytes"),
    ],
)
def test_bad_arguments_are_refused_in_one_line_before_anything_starts(argv, msg, monkeypatch, capsys):
    def must_not_run(**kw):
        raise AssertionError("started work on a bad argument")

    for name in ("run_suite", "benchmark_commits", "checkout_root"):
        monkeypatch.setattr(runner, name, must_not_run)
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and msg in err and len(err.strip().splitlines()) == 1


def test_thread_counts_are_normalized_and_version_is_printed(capsys):
    assert cli.build_parser().parse_args(["run", "--threads", "4, 1,4"]).threads == "1,4"
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    from qbench import __version__

    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"qbench {__version__}"


def test_demo_without_memory_says_so(monkeypatch, capsys):
    import qbench.measure.demo

    def no_memory(size):
        raise MemoryError

    monkeypatch.setattr(qbench.measure.demo, "run_demo", no_memory)
    assert cli.main(["demo", "--size", str(10**13)]) == 1
    assert "not enough memory for --size 10,000,000,000,000" in capsys.readouterr().err


def _model_document(machine: str) -> dict:
    """A model.json as qbench model writes it, cut to what the main page reads."""
    latency = {"1": {"median_s": 0.010, "p99_s": 0.012, "spread": 1.02}}
    entry = {"bytes": 4e6, "quantized": 0, "latency": latency, "baseline_latency": latency, "peak_rss": 1e8}
    faster = {"1": {"median_s": 0.005, "p99_s": 0.006, "spread": 1.02}}
    int8 = {**entry, "bytes": 1e6, "quantized": 4, "latency": faster, "fidelity": {"y": {"sqnr_db": 31.0}}}
    return {
        "model": "tiny.onnx",
        "machine_name": machine,
        "threads": [1],
        "variants": {
            "float32": {**entry, "label": "float32", "load_s": 0.1},
            "dynamic": {**int8, "label": "dynamic int8", "load_s": 0.1},
        },  # fmt: skip
        "verdict": ["dynamic int8: 2.00x faster at 1 thread, 4.00x smaller, outputs 31.0 dB: faster on this CPU"],
    }


def test_the_page_leads_with_the_verdict_of_a_model_run_beside_it_on_this_machine(tmp_path, capsys):
    for name, machine in (("tiny", "box"), ("elsewhere", "another-host")):
        folder = tmp_path / "reports" / f"model-{name}"
        folder.mkdir(parents=True)
        (folder / "model.json").write_text(json.dumps(_model_document(machine)))
    (tmp_path / "reports" / "model-broken").mkdir()
    (tmp_path / "reports" / "model-broken" / "model.json").write_text("{")
    out = tmp_path / "reports" / "latest"
    assert cli.main(["report", "--results", str(RESULTS), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "skipping" in err and "model-broken" in err  # a broken model.json is named, and the page still built
    md = (out / "report.md").read_text()
    model = md.index("## Your model, tiny.onnx, end to end in ONNX Runtime (qbench model)")
    assert model < md.index("## Elementwise") and "2.00x faster at 1 thread" in md[model:]
    assert md.count("## Your model") == 1  # the model measured on another machine is not this page's
