"""The analysis layer without asv: tables, pages and the run summary on the result files of a real quick run.

``tests/data/quick-run`` holds the asv results of one ``qbench run --quick`` (2 threads, with the peers),
so every table and page is built here from what the suite really writes, in seconds.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qbench import cases, report
from qbench.analysis.results import load_results, machine_info
from qbench.measure.runner import rounds_file
from qbench.report import headline, tables

DATA = Path(__file__).parent / "data"
RESULTS = DATA / "quick-run"
COMMIT = "40a340561acd87377b88a297de3cde5b1a63b3a1"

#: The kernels of the canned run (it predates the block formats).
OLDER_KERNELS = [k for k in cases.KERNELS if not k.startswith("block_")]


@pytest.fixture(scope="module")
def frame():
    return load_results(RESULTS)


@pytest.fixture(scope="module")
def info():
    return machine_info(RESULTS, "box")


def _time(frame, bench, **params):
    rows = frame[frame["benchmark"] == bench]
    for k, v in params.items():
        rows = rows[rows[k] == v]
    (value,) = rows["value"]
    return value


def _ratio(frame, comparison, size, threads=1):
    return _time(
        frame, "bench_side_by_side.SideBySide.track_ratio", size=size, threads=threads, param_comparison=comparison
    )


def test_select_is_the_one_row_filter(frame):
    ok = frame["status"] == "ok"
    assert len(tables.select(frame, "time_run")) == (frame["benchmark"].str.endswith(".time_run") & ok).sum()
    memory = tables.select(frame, cls="Memory")
    assert set(memory["benchmark"].str.split(".").str[1]) == {"Memory"} and memory["status"].eq("ok").all()
    assert set(tables.select(frame, module="bench_compile")["benchmark"]) == {
        "bench_compile.timeraw_first_quantize_cached",
        "bench_compile.timeraw_import_qbench",
        "bench_compile.track_compile_quantize_seconds",
    }
    skipped = tables.select(frame, "time_run", status="skipped")
    assert len(skipped) and skipped["value"].isna().all()


def test_timings_count_bytes_from_the_arrays(frame):
    t = tables.timings(frame)
    row = t[(t["kernel"] == "quantize") & (t["dtype"] == "uint8") & (t["size"] == 2**14) & (t["impl"] == "qbench")]
    row = row[row["threads"] == 1].iloc[0]
    # float32 in (4 bytes) and uint8 out (1 byte) per element; the working set is the same two arrays.
    assert row["bytes"] == 5 * 2**14 and row["footprint"] == 5 * 2**14
    assert row["gbps"] == pytest.approx(5 * 2**14 / row["value"] / 1e9)
    assert row["elements_per_s"] == pytest.approx(2**14 / row["value"])
    acc = t[(t["kernel"] == "accumulate") & (t["dtype"] == "float32+=uint8")].iloc[0]
    assert acc["bytes"] == acc["size"] * (4 + 4 + 1)  # acc read and written, x read
    assert set(t["kernel"]) == set(OLDER_KERNELS) | set(cases.BANDWIDTH_OPS)


def test_summary_table_agrees_with_the_raw_rows(frame, info):
    t = tables.timings(frame)
    sbs = tables.side_by_side_table(frame)
    summary = tables.summary_table(t, sbs, info["caches"]).set_index(["kernel", "dtype", "size"])
    bench = "bench_quantize.Dequantize.time_run"
    mine = _time(frame, bench, size=2**20, dtype="int8", threads=1, impl="qbench")
    ref = _time(frame, bench, size=2**20, dtype="int8", threads=1, impl="numpy")
    assert summary.loc[("dequantize", "int8", 2**20), "x NumPy"] == pytest.approx(ref / mine)
    share = _ratio(frame, "dequantize int8 / stream", 2**20)
    assert summary.loc[("dequantize", "int8", 2**20), "% of ceiling"] == pytest.approx(100 * share)
    over = summary[summary["% of ceiling"].round(0) > 100]
    assert (over["note"] != "").all() and (summary.loc[summary["% of ceiling"] < 99, "note"] == "").all()


def test_headline_answers_per_memory_level_from_the_side_by_side_rows(frame, info):
    sbs = tables.side_by_side_table(frame)
    head = headline.headline_table(sbs, info["caches"]).set_index(["kernel", "level"])
    caches = info["caches"]
    # Each row's working set lies in its level, and it is the largest size measured there.
    for (kernel, level), r in head.iterrows():
        fp = cases.footprint(kernel, r["dtype"], int(r["size"]))
        assert headline.level_of(fp, caches) == level
        bigger = [n for n in set(sbs["size"]) if n > r["size"]]
        assert all(headline.level_of(cases.footprint(kernel, r["dtype"], n), caches) != level for n in bigger)
    assert head.loc[("sum", "L1"), "size"] == 2**14  # 16 KiB of uint8 in a 32 KiB L1; 2**18 is 256 KiB
    assert headline.level_of(caches["L3"] + 1, caches) == "DRAM" and headline.level_of(1, caches) == "L1"
    f32, ort = (_ratio(frame, c, 2**24) for c in ("sum uint8 / float32", "quantize uint8 / onnxruntime"))
    assert head.loc[("sum", "L3"), "8-bit / float32"] == f32
    assert head.loc[("quantize", "DRAM"), "x onnxruntime"] == ort
    shown = headline.headline_display(head.reset_index())
    assert list(shown.columns) == [
        "operation",
        "data in",
        "size",
        "8-bit / float32",
        "share of ceiling",
        "x ONNX Runtime",
        "x PyTorch",
    ]
    assert "2**24 (80 MiB)" in set(shown["size"]) and f"{ort:.2f}" in set(shown["x ONNX Runtime"])
    not_installed = headline.headline_display(head.reset_index(), missing_peers=("torch",))
    assert set(not_installed["x PyTorch"]) == {"not installed", "-"}


def test_verdicts_say_where_the_data_sits(frame, info):
    sbs = tables.side_by_side_table(frame)
    lines = headline.verdicts(headline.headline_table(sbs, info["caches"]), info["caches"])
    assert [line.split(":")[0] for line in lines] == list(headline.HEADLINE_NAMES.values())
    sum_line = next(line for line in lines if line.startswith("sum uint8"))
    # 2**24 uint8 values (16 MiB) sit in a 32 MiB L3; the float32 twin (64 MiB) does not.
    assert "with the 8-bit data in L3 (the float32 data in DRAM)" in sum_line


def _sbs_row(kind, kernel, dtype, against, size, threads, ratio, low=np.nan, high=np.nan):
    return dict(
        kind=kind,
        kernel=kernel,
        dtype=dtype,
        against=against,
        size=size,
        threads=threads,
        ratio=ratio,
        low=low,
        high=high,
        footprint=0,
    )


def test_flags_name_what_cannot_be_right(info):
    rows = pd.DataFrame(
        [
            _sbs_row("dtype", "sum", "uint8", "float32", 2**24, 1, 7.8),
            _sbs_row("dtype", "sum", "uint8", "float32", 2**12, 1, 4.5),
            _sbs_row("dtype", "sum", "uint8", "float32", 2**12, 1, 3.9),
            _sbs_row("threads", "quantize", "uint8", "1 thread", 2**10, 2, 0.0019),
            _sbs_row("threads", "quantize", "uint8", "1 thread", 2**20, 2, 2.5),
            _sbs_row("peer", "quantize", "uint8", "torch", 2**14, 1, 1.3, low=0.7, high=1.6),
            _sbs_row("peer", "quantize", "uint8", "torch", 2**16, 1, 1.3, low=1.1, high=1.6),
            _sbs_row("ceiling", "quantize", "uint8", "stream", 2**10, 1, 1.2),
        ]
    )
    got = headline.flags(rows, info["caches"])
    keys = zip(got["kind"], got["size"], got["ratio"], strict=True)
    why = dict(zip(keys, got["why"], strict=True))
    assert why[("dtype", 2**24, 7.8)].startswith("beyond the 4x its bytes allow: the uint8 data sits in L3")
    assert "with both in L1: suspect the measurement" in why[("dtype", 2**12, 4.5)]
    assert "more than twice as slow as one" in why[("threads", 2**10, 0.0019)]
    assert why[("threads", 2**20, 2.5)].startswith("more than 2x from 2 threads, which only data that now fits")
    assert why[("peer", 2**14, 1.3)] == "the middle half of the rounds disagrees on which side is faster (0.70 to 1.60)"
    assert why[("ceiling", 2**10, 1.2)].startswith("in cache")
    assert len(got) == 6  # 3.9x within the bytes, and a spread entirely above 1, are not flagged
    lines = headline.flag_lines(got)
    assert lines[0].startswith("[1] sum uint8 / float32 at 2**24, 1 thr: 7.80")
    assert sum(line.count("[") for line in lines) == 6


def test_memory_accuracy_calibration_and_compile_tables(frame):
    current = frame[frame["commit"] == COMMIT]
    mem = tables.memory_table(current).set_index(["kernel", "dtype"])
    assert mem.loc[("quantize", "uint8"), "bytes_per_element (qbench)"] == 5
    acc = tables.accuracy_table(current)
    assert set(acc["method"]) == set(cases.CALIBRATION_METHODS) and set(cases.DISTRIBUTIONS) <= set(acc.columns)
    sqnr = frame[frame["benchmark"].str.endswith("track_sqnr_db")]
    pick = sqnr[(sqnr["param_method"] == "mse") & (sqnr["param_distribution"] == "laplace") & (sqnr["dtype"] == "int8")]
    assert acc.set_index(["dtype", "method"]).loc[("int8", "mse"), "laplace"] == pick["value"].iloc[0]
    cal = tables.calibration_table(current)
    assert list(cal["method"]) == sorted(cases.CALIBRATION_METHODS)
    assert list(cal.columns[1:]) == [f"2**{k} values" for k in (14, 18)]
    assert set(tables.compile_table(current)["what"]) == set(tables.COMPILE_LABELS.values())


def test_a_report_from_canned_results(frame, info, tmp_path):
    lines = []
    index = report.build_report(frame, info, tmp_path / "out", progress=lines.append)
    folder = index.parent
    meta = json.loads((folder / "report.json").read_text())
    assert meta["commit"] == COMMIT and meta["machine"] == "box"
    # One commit: every figure of the page but history, each written and inlined in the page.
    kinds = [spec.kind for spec in report.FIGURES]
    assert lines == [f"  plotting {k}" for k in kinds]
    assert meta["figures"] == [
        f"{k}.png" for k in ("throughput", "speedup", "memory", "accuracy", "threads", "side_by_side")
    ]
    page = index.read_text()
    assert page.count("data:image/png;base64,") == len(meta["figures"])
    assert "AMD EPYC" in page and "avx512_vnni" in page
    assert len(pd.read_csv(folder / "results.csv")) == len(frame)
    md = (folder / "report.md").read_text()
    for heading, _ in report.report_tables(report.report_data(frame, COMMIT, info["caches"])):
        assert f"## {heading}" in md
    with pytest.raises(ValueError, match="no results for commit ffff"):
        report.build_report(frame, info, tmp_path / "none", commit="ffff")


def test_publish_replaces_only_on_success(tmp_path):
    out = tmp_path / "page"
    report.publish(out, lambda d: (d / "a.txt").write_text("first"))

    def broken(d):
        (d / "a.txt").write_text("half")
        raise RuntimeError("plot failed")

    with pytest.raises(RuntimeError):
        report.publish(out, broken)
    assert (out / "a.txt").read_text() == "first" and [p.name for p in tmp_path.iterdir()] == ["page"]


def test_run_summary_and_readme_table(frame, info):
    lines = report.run_summary(frame, COMMIT, info["caches"])
    text = "\n".join(lines)
    for kernel in OLDER_KERNELS:  # 2**14 and the largest size of every kernel, then every comparison
        assert f"\n{kernel:<16} " in "\n" + text
    assert all(c.name in text for c in cases.comparisons() if c.kernel != "quantize" or c.against != "1 thread")
    notes = [line for line in lines if line.startswith("  [")]
    marks = sum(text.count(f"[{i}]") for i in range(1, len(notes) + 1))
    assert marks >= 2 * len(notes)  # each note is referenced at least once besides its own line
    md = report.readme_table(frame, info)
    assert "| kernel | dtype | size | x onnxruntime | x torch | x numpy | share of ceiling |" in md
    assert "| quantize | uint8 | 2**14 |" in md and "| 2**10 |" not in md
    assert report.readme_table(frame, info, "ffff") == "_no results for commit ffff_\n"


def test_a_run_without_side_by_side_points_still_summarizes_and_reports(frame, info, tmp_path):
    # qbench run -b "Quantize\.": timings only, no ratio to answer from.
    only = frame[frame["benchmark"].str.startswith("bench_quantize.Quantize.")]
    only = only.drop(columns=[c for c in only if c.startswith("param_comparison")])
    lines = report.run_summary(only, COMMIT, info["caches"])
    assert any(line.startswith("\nelementwise") for line in lines)
    assert any(line.startswith("quantize ") for line in lines)
    index = report.build_report(only, info, tmp_path / "page", progress=lambda s: None)
    assert "no side-by-side results for this commit" in index.read_text()


def test_figures_registry_is_ordered_and_complete():
    kinds = [spec.kind for spec in report.FIGURES]
    assert kinds == [
        "throughput",
        "speedup",
        "memory",
        "accuracy",
        "threads",
        "side by side",
        "linear layer",
        "linear layer speed",
        "bits per weight",
        "history",
    ]
    assert [s.order for s in report.FIGURES] == sorted(s.order for s in report.FIGURES)


def copy_results(tmp_path: Path, machine: str = "box") -> Path:
    results = tmp_path / ".asv" / "results"
    shutil.copytree(RESULTS, results)
    if machine != "box":
        shutil.move(results / "box", results / machine)
    return results


def shifted_result(results: Path, commit: str, factor: float, bench: str, started_at: int) -> None:
    """A copy of the canned result file as ``commit``, with ``bench`` (all parameters) ``factor`` times slower."""
    src = next((results / "box").glob("40a34056-*.json"))
    data = json.loads(src.read_text())
    data["commit_hash"] = commit
    cols = data["result_columns"]
    for name, entry in data["results"].items():
        entry[cols.index("started_at")] = started_at
        if name == bench:
            for col in ("result", "stats_ci_99_a", "stats_ci_99_b", "stats_q_25", "stats_q_75"):
                entry[cols.index(col)] = [v * factor if v is not None else None for v in entry[cols.index(col)]]
    (results / "box" / f"{commit[:8]}-existing-py_usr_bin_python3.json").write_text(json.dumps(data))


def test_shares_above_one_in_the_canned_run_are_explained(frame, info):
    sbs = tables.side_by_side_table(frame)
    over = sbs[(sbs["kind"] == "ceiling") & sbs["ratio"].map(tables.share_over_one)]
    for r in over.itertuples():
        note = tables.share_note(r.kernel, r.dtype, r.size, info["caches"])
        private = cases.footprint(r.kernel, r.dtype, r.size) <= info["caches"]["L2"]
        assert note.startswith("in cache") == private
    assert np.isfinite(sbs["ratio"]).all()


def test_rounds_kept_by_a_run_become_the_spread(tmp_path, monkeypatch, info):
    from benchmarks.benchmarks import _common

    results = copy_results(tmp_path)
    rounds = rounds_file(results, "box", COMMIT)
    monkeypatch.setenv(_common.ROUNDS_FILE, str(rounds))
    _common.record_rounds("quantize uint8 / torch", 2**14, 1, [0.5, 0.9, 0.7])
    _common.record_rounds("quantize uint8 / torch", 2**14, 1, [0.6, 0.8, 0.7])  # a later run of the point wins
    rounds.open("a").write("not json\n")
    with pytest.warns(UserWarning, match="line 3 of .*not a side-by-side record"):
        frame = load_results(results)
    sbs = tables.side_by_side_table(frame).set_index(["kernel", "dtype", "against", "size", "threads"])
    point = sbs.loc[("quantize", "uint8", "torch", 2**14, 1)]
    assert (point["low"], point["high"]) == (pytest.approx(0.65), pytest.approx(0.75))  # the quartiles
    assert np.isnan(sbs.loc[("quantize", "uint8", "torch", 2**18, 1), "low"])  # a point with no rounds kept
    shown = headline.headline_display(headline.headline_table(tables.side_by_side_table(frame), info["caches"]))
    assert any(cell.endswith("(0.65 to 0.75)") for cell in shown["x PyTorch"])


def test_peers_not_installed_are_named(frame):
    assert headline.missing_peers(frame) == ()
    others = frame[~frame["benchmark"].str.contains("SideBySide")].drop(columns="param_comparison")
    assert headline.missing_peers(others) == ()  # a run of other benchmarks says nothing about the peers
    skipped = frame.copy()
    torch_rows = skipped["param_comparison"].astype(str).str.endswith(" / torch")
    skipped.loc[torch_rows, "status"] = "skipped"
    assert headline.missing_peers(skipped) == ("torch",)


def test_a_share_above_one_that_every_middle_round_agrees_on_questions_the_probe(info):
    caches = info["caches"]
    spread = tables.share_note("quantize", "uint8", 2**24, caches, low=0.97)
    agreed = tables.share_note("quantize", "uint8", 2**24, caches, low=1.09)
    assert "measurement spread" in spread and "the ceiling, not the kernel, is in question" in agreed
    assert tables.share_note("quantize", "uint8", 2**10, caches, low=1.2).startswith("in cache")
