"""The linear layers' tables and pictures, from the asv results of a real ``qbench run --quick -b Matmul``.

``tests/data/layer-run`` holds them (1 thread, with the peers), as
``tests/data/quick-run`` holds the elementwise suite's.
"""

from pathlib import Path

import numpy as np
import pytest

from qbench import cases, report
from qbench.analysis.results import load_results, machine_info
from qbench.report import layers

RESULTS = Path(__file__).parent / "data" / "layer-run"


@pytest.fixture(scope="module")
def frame():
    return load_results(RESULTS)


def test_gops_and_weight_bytes_follow_the_registry_rules(frame):
    t = layers.layer_timings(frame)
    assert not t.empty and set(t["shape"]) == set(cases.matmul.SHAPES_QUICK)
    for _, row in t.iterrows():
        m, k, n = (int(v) for v in row["shape"].split("x"))
        assert row["gops"] == pytest.approx(2 * m * k * n / row["value"] / 1e9)
        weight_itemsize = {"float32": 4, "quantize_x": 0}.get(row["variant"], 1)
        assert row["weight_gbps"] == pytest.approx(k * n * weight_itemsize / row["value"] / 1e9)


def test_layer_table_has_one_column_per_shape_and_no_input_quantization_row(frame):
    table = layers.layer_table(frame)
    assert list(table.columns[1:]) == [
        layers._weights_label(s) for s in ("1x1024x1024", "1x4096x11008", "64x4096x4096")
    ]
    labels = set(table["GOP/s, 1 thread"])
    assert layers.LABELS[("float32", "numpy")] in labels and layers.LABELS[("static", "qbench")] in labels
    assert not any("alone" in label for label in labels)  # quantize_x has no matmul to count


def test_ratio_table_holds_gemv_to_the_read_ceiling_and_gemm_to_the_peak(frame):
    ratios = layers.layer_ratio_table(frame).set_index("comparison")
    assert np.isfinite(ratios.loc["matmul static / read", "1x4096x11008"])
    assert np.isnan(ratios.loc["matmul static / read", "64x4096x4096"])
    assert np.isfinite(ratios.loc["matmul static / peak", "64x4096x4096"])
    assert np.isnan(ratios.loc["matmul static / peak", "1x1024x1024"])
    # Rows come in the registry's order of comparisons.
    order = [c for c in cases.matmul.COMPARISONS if c in ratios.index]
    assert list(ratios.index) == order


def test_accuracy_table_lists_each_method_then_dynamic(frame):
    acc = layers.layer_accuracy_table(frame)
    assert list(acc.iloc[:, 0]) == list(cases.matmul.ACCURACY_METHODS)
    assert list(acc.columns[1:]) == sorted(cases.matmul.ACTIVATIONS)
    # Outliers cost every method accuracy: a 50-sigma value stretches the range the other values share.
    assert (acc["outliers"] < acc["normal"]).all()


def test_report_page_shows_the_layers(frame, tmp_path):
    info = machine_info(RESULTS, "box")
    index = report.build_report(frame, info, tmp_path / "page", progress=lambda s: None)
    page = (tmp_path / "page" / "report.md").read_text()
    for heading in ("int8 vs float32 for a linear layer", "Linear layers y = x @ W.T", "Linear layers side by side"):
        assert heading in page
    assert (tmp_path / "page" / "layer_int8_vs_float32.png").stat().st_size > 10_000
    assert info["blas"] in index.read_text()  # the BLAS behind the float32 baseline, and its kernels, named


def test_run_summary_ends_with_the_layers(frame):
    from qbench.report.pages import layer_summary

    lines = layer_summary(frame)
    assert lines[0].startswith("\nlinear layers")
    rows = {line.split()[0] + " " + " ".join(line.split()[1:4]): line for line in lines[2:]}
    assert len(lines) - 2 == len(layers.layer_ratio_table(frame))
    read = rows["matmul static / read"].split()
    assert read[-1] == "-" and float(read[-2]) > 0  # a GEMM has no read share; the DRAM GEMV has one


def _raw_results(benchmark: str) -> dict[tuple, float]:
    """One benchmark's values straight from the asv result file, keyed by its parameters as asv stores them:
    read with json and itertools here, not with the loader under test."""
    import itertools
    import json
    import re

    path = next((RESULTS / "box").glob("*-existing-*.json"))
    text = re.sub(r"-?\bInfinity\b|\bNaN\b", "null", path.read_text())
    data = json.loads(text)
    values, params = data["results"][benchmark][:2]
    keys = itertools.product(*[[p.strip("'") for p in axis] for axis in params])
    return dict(zip(keys, values, strict=True))


def test_ratio_table_shows_the_stored_side_by_side_ratios_as_they_are(frame):
    """Each cell is the stored ratio itself (qbench's speed over the baseline's), not its inverse or a neighbour."""
    raw = _raw_results("bench_matmul.MatmulSideBySide.track_ratio")
    table = layers.layer_ratio_table(frame).set_index(["comparison", "threads"])
    checked = 0
    for (shape, comparison, threads), value in raw.items():
        if value is None:
            continue
        assert table.loc[(comparison, int(threads)), shape] == pytest.approx(value, rel=1e-12), (shape, comparison)
        checked += 1
    assert checked >= 10
    # By hand, from the stored file: static int8 over NumPy float32 at 1x1024x1024.
    assert raw[("1x1024x1024", "matmul static / numpy float32", "1")] == pytest.approx(1.4105807328213429)


def test_the_answer_table_names_the_fastest_peer_and_the_float32_gain(frame):
    """The page's first table: each format per shape over NumPy float32, and over the peer that beats it most."""
    table = layers.answer_table(frame)
    r = layers.layer_ratios(frame)
    assert list(table.columns) == ["linear layer (M x K x N)", "format", "x NumPy float32", "x the fastest peer"]
    assert len(table) == 3 * 2  # static and dynamic at each quick shape (this run measured no block format)
    for row in table.itertuples(index=False):
        shape = row[0].split()[1]
        variant = next(v for v, label in layers.ANSWER_FORMATS.items() if label == row.format)
        at = r[(r["shape"] == shape) & (r["variant"] == variant) & (r["threads"] == 1)]
        flt = at.loc[at["against"] == "numpy float32", "ratio"].iloc[0]
        peers = at[at["against"].str.startswith(("onnxruntime ", "torch "))]
        fastest = peers.loc[peers["ratio"].idxmin()]
        name = layers.PEER_NAMES[fastest["against"].split()[0]]
        assert row[2] == f"{flt:.2f}" and row[3] == f"{fastest['ratio']:.2f} ({name})"
    assert {"ONNX Runtime", "PyTorch"} <= {cell.split("(")[1][:-1] for cell in table["x the fastest peer"]}
    assert len(layers.answer_lines(frame)) == 3
