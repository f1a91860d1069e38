"""The asv results parser, on hand-written result files."""

import json

import numpy as np
import pytest

from qbench.results import ResultsError, load_results

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
    acc = df[df["kind"] == "track"].set_index("param_distribution")
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


def test_filters_and_empty_folders(results_dir, tmp_path):
    assert len(load_results(results_dir, commit="abc123")) == 6
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
