"""The block formats' tables and picture, from the asv results of a real run (``tests/data/block-run``:
``qbench run -b "BlockQuantize|BlockDequantize|BlockSideBySide|BlockAccuracy|Matmul"`` at 1 thread, with peers,
sizes 2**14, 2**20, 2**24 and the GEMVs 1x4096x4096 and 1x4096x11008)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qbench import cases, report
from qbench.analysis.results import load_results, machine_info
from qbench.report import blocks, tables

RESULTS = Path(__file__).parent / "data" / "block-run"


@pytest.fixture(scope="module")
def frame():
    return load_results(RESULTS)


def test_conversion_table_counts_float_and_format_bytes(frame):
    t = blocks.conversion_table(frame)
    assert set(t["format"]) == set(cases.blocks.FORMATS) and set(t["conversion"]) == {"quantize", "dequantize"}
    raw = tables.select(frame, "time_run", cls="BlockDequantize")
    seconds = raw[(raw["dtype"] == "Q4_0") & (raw["size"] == 2**24) & (raw["impl"] == "qbench")]["value"].iloc[0]
    row = t[(t["conversion"] == "dequantize") & (t["format"] == "Q4_0") & (t["size"] == "2**24")]
    row = row[row["impl"] == "qbench"].iloc[0]
    # 4 bytes per value out; 18 bytes per 32 values of Q4_0 in; 2**24 / 32 blocks.
    assert row["float32 GB/s"] == pytest.approx(4 * 2**24 / seconds / 1e9)
    assert row["format GB/s"] == pytest.approx(18 * 2**24 / 32 / seconds / 1e9)
    assert row["ns / 32 values"] == pytest.approx(seconds / (2**24 / 32) * 1e9)
    int4 = t[(t["format"] == "int4") & (t["conversion"] == "quantize")].iloc[0]
    assert int4["format GB/s"] == pytest.approx(int4["float32 GB/s"] / 8)  # half a byte per value written


def test_accuracy_table_puts_bits_beside_each_format(frame):
    acc = blocks.accuracy_table(frame).set_index("format")
    assert list(acc.index) == list(cases.blocks.ACCURACY_FORMATS)
    assert acc.loc["Q4_0", "bits per weight"] == 4.5 and acc.loc["int4 b128", "bits per weight"] == 4.25
    # Fewer bits, less accuracy; smaller blocks isolate outliers.
    assert acc.loc["Q8_0", "SQNR dB, normal"] > acc.loc["Q4_0", "SQNR dB, normal"] + 15
    assert acc.loc["Q8_0", "SQNR dB, outliers"] > acc.loc["int8 channel", "SQNR dB, outliers"]
    assert acc.loc["int4 b32", "SQNR dB, outliers"] > acc.loc["int4 b128", "SQNR dB, outliers"]


def test_bits_speedup_takes_qbench_side_by_side_and_peers_from_timings(frame):
    t = blocks.bits_speedup(frame)
    mine = t[t["impl"] == "qbench"].set_index(["shape", "variant"])
    ratios = report.layers.layer_ratio_table(frame).set_index("comparison")
    assert mine.loc[("1x4096x11008", "Q4_0"), "speedup"] == ratios.loc["matmul Q4_0 / numpy float32", "1x4096x11008"]
    assert mine.loc[("1x4096x11008", "Q4_0"), "bits"] == 4.5
    peers = t[t["impl"] == "onnxruntime"]
    assert set(peers["variant"]) == {"dynamic", "nbits4", "nbits8"} and np.all(peers["speedup"] > 0)


def test_the_picture_and_the_page_show_the_block_formats(frame, tmp_path):
    info = machine_info(RESULTS, "box")
    out = tmp_path / "page"
    report.build_report(frame, info, out, progress=lambda s: None)
    assert (out / "bits_per_weight_speedup.png").stat().st_size > 10_000
    md = (out / "report.md").read_text()
    assert "Block formats: conversion speed" in md and "Block formats: bits per weight" in md
    assert "| Q4_0 | 4.5 |" in md


def test_one_commit_measured_from_two_environments_still_reports(frame, tmp_path):
    # Two result files of one commit (two virtual environments, the second with the peers): the layers' timings
    # twice, which once made the layer figures fail on a duplicate shape.
    layers = frame[frame["benchmark"].str.endswith("Matmul.time_run")]
    doubled = pd.concat([frame, layers], ignore_index=True)
    out = tmp_path / "page"
    report.build_report(doubled, machine_info(RESULTS, "box"), out, progress=lambda s: None)
    assert (out / "layer_gops.png").exists() and (out / "bits_per_weight_speedup.png").exists()
    # The tables keep one row per case: the median over the result files.
    conversions = pd.concat([frame, frame[frame["benchmark"].str.contains("BlockQuantize")]], ignore_index=True)
    assert len(blocks.conversion_table(conversions)) == len(blocks.conversion_table(frame))
    assert len(blocks.bits_speedup(doubled)) == len(blocks.bits_speedup(frame))
