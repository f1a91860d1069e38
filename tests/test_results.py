"""The asv results parser, on hand-written result files."""

import json

import numpy as np
import pytest

from qbench.analysis.results import ResultsError, load_results

COLUMNS = [
    "result",
    "params",
    "version",
    "started_at",
    "duration",
    "stats_ci_99_a",
    "stats_ci_99_b",
    "stats_q_25",
    "stats_q_75",
    "stats_number",
    "stats_repeat",
    "samples",
    "profile",
]

BENCHMARKS = {
    "bench_quantize.Quantize.time_run": {
        "name": "bench_quantize.Quantize.time_run",
        "param_names": ["size", "dtype", "threads", "impl"],
        "unit": "seconds",
        "type": "time",
    },
    "bench_calibrate.Accuracy.track_sqnr_db": {
        "name": "bench_calibrate.Accuracy.track_sqnr_db",
        "param_names": ["method", "distribution", "dtype"],
        "unit": "dB",
        "type": "track",
    },
    "bench_side_by_side.SideBySide.track_ratio": {
        "name": "bench_side_by_side.SideBySide.track_ratio",
        "param_names": ["size", "comparison", "threads"],
        "unit": "ratio",
        "type": "track",
    },
    "version": 2,
}

# Written as asv writes it: NaN and Infinity are bare words, parameters are repr() strings.
RESULT = """{
 "commit_hash": "abc123def456", "env_name": "existing-py", "date": 1700000000000,
 "params": {"machine": "box"}, "python": "3.11", "requirements": {}, "env_vars": {},
 "result_columns": COLUMNS_JSON,
 "results": {
  "bench_quantize.Quantize.time_run": [
    [1e-05, NaN, 2e-05, null],
    [["1024", "2048"], ["'uint8'"], ["1"], ["'qbench'", "'numpy'"]],
    "v1", 0, 1.0,
    [0.9e-05, NaN, 1.8e-05, null], [1.1e-05, NaN, 2.2e-05, null],
    [0.95e-05, NaN, 1.9e-05, null], [1.05e-05, NaN, 2.1e-05, null],
    [100, null, 50, null], [10, null, 10, null]
  ],
  "bench_calibrate.Accuracy.track_sqnr_db": [
    [Infinity, 40.5], [["'minmax'"], ["'normal'", "'uniform'"], ["'uint8'"]], "v2", 0, 1.0
  ],
  "bench_side_by_side.SideBySide.track_ratio": [
    [0.8, 0.75, 1.25, 1.5, 0.85, 0.7, 3.5, 3.25, NaN, 1.8],
    [["16384"],
     ["'quantize uint8 / torch'", "'quantize uint8 / onnxruntime'", "'quantize uint8 / stream'",
      "'sum uint8 / float32'", "'quantize uint8 / 1 thread'"],
     ["1", "2"]],
    "v3", 0, 1.0
  ]
 },
 "durations": {}, "version": 2
}""".replace("COLUMNS_JSON", json.dumps(COLUMNS))


@pytest.fixture
def results_dir(tmp_path):
    (tmp_path / "benchmarks.json").write_text(json.dumps(BENCHMARKS))
    box = tmp_path / "box"
    box.mkdir()
    (box / "machine.json").write_text(json.dumps({"machine": "box", "version": 1}))
    (box / "abc123de-existing-py.json").write_text(RESULT)
    return tmp_path


def test_rows_params_and_statuses(results_dir):
    df = load_results(results_dir)
    q = df[df["benchmark"] == "bench_quantize.Quantize.time_run"].set_index(["size", "impl"])
    assert len(q) == 4 and set(q["dtype"]) == {"uint8"} and set(q["threads"]) == {1}
    assert q.loc[(1024, "qbench"), "value"] == 1e-05 and q.loc[(1024, "qbench"), "status"] == "ok"
    assert q.loc[(1024, "numpy"), "status"] == "skipped" and np.isnan(q.loc[(1024, "numpy"), "value"])
    assert q.loc[(2048, "numpy"), "status"] == "failed"
    assert q.loc[(2048, "qbench"), "q25"] == 1.9e-05 and q.loc[(2048, "qbench"), "ci_high"] == 2.2e-05
    assert set(q["kernel"]) == {"quantize"} and set(q["machine"]) == {"box"} and set(q["unit"]) == {"seconds"}
    assert str(q["commit"].iloc[0]) == "abc123def456" and q["date"].iloc[0].year == 2023


def test_infinity_and_track_rows(results_dir):
    df = load_results(results_dir)
    acc = df[df["benchmark"].str.contains("Accuracy")].set_index("param_distribution")
    assert acc.loc["normal", "value"] == np.inf and acc.loc["uniform", "value"] == 40.5
    assert set(acc["param_method"]) == {"minmax"} and set(acc["unit"]) == {"dB"}


def test_corrupt_partial_and_foreign_files_are_skipped_with_a_warning(results_dir):
    box = results_dir / "box"
    (box / "corrupt.json").write_text('{"results": {"x": [1, 2')
    (box / "foreign.json").write_text(json.dumps({"hello": "world"}))
    partial = json.loads(RESULT.replace("NaN", "null").replace("Infinity", "1e308"))
    partial["results"]["bench_quantize.Quantize.time_run"][0] = [1.0]  # 1 value for 4 parameter sets
    (box / "partial.json").write_text(json.dumps(partial))
    with pytest.warns(UserWarning) as caught:
        df = load_results(results_dir)
    messages = " ".join(str(w.message) for w in caught)
    assert "corrupt.json" in messages and "foreign.json" in messages and "partial.json" in messages
    assert len(df[df["benchmark"].str.endswith("time_run")]) == 4  # the good file still loads


def test_side_by_side_rows_tables_and_readme_table(results_dir):
    from qbench.report import peers_table, readme_table, side_by_side_pivot, side_by_side_table

    df = load_results(results_dir)
    rows = df[df["benchmark"].str.endswith("track_ratio")]
    assert set(rows["kernel"]) == {"quantize", "sum"} and set(rows["dtype"]) == {"uint8"}
    sbs = side_by_side_table(df)  # the skipped 1-thread scaling point is left out
    assert len(sbs) == 9 and set(sbs["kind"]) == {"peer", "ceiling", "dtype", "threads"}
    got = sbs.set_index(["against", "threads"])["ratio"]
    assert got[("torch", 1)] == 0.8 and got[("stream", 2)] == 0.7 and got[("1 thread", 2)] == 1.8
    peers = peers_table(sbs).set_index("threads")
    assert list(peers.columns) == ["kernel", "dtype", "size", "x onnxruntime", "x torch", "share of ceiling"]
    assert peers.loc[1, "x onnxruntime"] == 1.25 and peers.loc[2, "share of ceiling"] == 0.7
    wide = side_by_side_pivot(sbs)
    assert "2**14" in wide.columns and len(wide) == 9
    md = readme_table(df, {"cpu": "Test CPU", "cores": 4, "simd": ["avx2"], "numba": "0.0"})
    assert "side by side in one process, on Test CPU (4 cores, avx2)" in md and "qbench abc123de" in md
    assert "| quantize | uint8 | 2**14 | 1.25 | 0.80 | 0.85 |" in md  # 1 thread only


def test_filters_and_empty_folders(results_dir, tmp_path):
    assert len(load_results(results_dir, commit="abc123")) == 16
    with pytest.raises(ResultsError, match="at commit ffff"):
        load_results(results_dir, commit="ffff")
    with pytest.raises(ResultsError, match="for machine other"):
        load_results(results_dir, machine="other")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ResultsError, match="no benchmark results"):
        load_results(empty)
    with pytest.raises(ResultsError, match="no results folder"):
        load_results(tmp_path / "missing")


def test_run_summary_explains_every_share_above_one(results_dir, capsys, tmp_path):
    from qbench.cli.run import print_summary

    box = results_dir / "box" / "abc123de-existing-py.json"
    box.write_text(box.read_text().replace("[0.8, 0.75, 1.25, 1.5, 0.85, 0.7,", "[0.8, 0.75, 1.25, 1.5, 1.15, 0.7,"))
    df = load_results(results_dir)
    print_summary(df, tmp_path, "abc123def456", {"caches": {"L1": 32768, "L2": 1 << 20}})
    out = capsys.readouterr().out
    assert "1.15[1]" in out and "0.70" in out and "0.70[" not in out  # only the share above 1 is marked
    assert "[1] a share of the ceiling above 100%: in cache (80 KiB <= L2)" in out
