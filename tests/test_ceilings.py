"""Shares of a bandwidth ceiling compare like with like: equal working sets, memory traffic, explained excess."""

import numpy as np
import pandas as pd
import pytest

from benchmarks.benchmarks import _common
from qbench import cases
from qbench.report import share_note, summary_table

CACHES = {"L1": 48 * 1024, "L2": 1 << 20, "L3": 32 << 20}
ALL_CASES = [(k, d) for k, case in cases.KERNELS.items() for d in case.dtypes]


def test_bytes_moved_follows_the_design_rules():
    # The rules as the design notes state them, per element.
    assert cases.bytes_moved("quantize", "uint8", 1) == 4 + 1
    assert cases.bytes_moved("dequantize", "uint8", 1) == 1 + 4
    assert cases.bytes_moved("sum", "uint8", 1) == 1
    assert cases.bytes_moved("accumulate", "float32+=uint8", 1) == 4 + 1 + 4
    assert cases.bytes_moved("copy", "float32", 1) == 8 and cases.bytes_moved("read", "float32", 1) == 4


def test_traffic_adds_a_read_of_every_array_only_written():
    assert cases.traffic("copy", "float32", 1) == 12 and cases.traffic("write", "float32", 1) == 8
    assert cases.traffic("quantize", "uint8", 1) == 6 and cases.traffic("dequantize", "uint8", 1) == 9
    # acc += x reads acc anyway, and a reduction writes nothing: traffic is what they move.
    for kernel, dtype in (("accumulate", "uint8+=uint8"), ("sum", "uint8"), ("dot", "int8")):
        assert cases.traffic(kernel, dtype, 1) == cases.bytes_moved(kernel, dtype, 1)


@pytest.mark.parametrize("kernel,dtype", ALL_CASES)
@pytest.mark.parametrize("size", [2**10, 2**14, 2**24])
def test_the_probe_gets_the_same_working_set(kernel, dtype, size):
    probe = cases.KERNELS[kernel].ceiling
    m = cases.ceiling_size(kernel, dtype, size)
    per_element = cases.footprint(probe, "float32", 1)
    assert abs(cases.footprint(probe, "float32", m) - cases.footprint(kernel, dtype, size)) <= per_element / 2
    if cases.itemsize(dtype.split("+=")[-1]) < 4:
        assert m < size  # narrower data: fewer probe elements, not the same count


def test_a_share_above_one_is_explained_by_what_bounds_the_probe():
    assert share_note("sum", "uint8", 2**14, CACHES).startswith("in cache")
    assert share_note("quantize", "uint8", 2**24, CACHES).startswith("reads 4:1 over writes")
    assert share_note("sum", "uint8", 2**24, CACHES) == "within the spread between rounds on this machine"
    assert share_note("accumulate", "float32+=float32", 2**24, CACHES).startswith("within the spread")


def _t(kernel, dtype, size, seconds):
    return {
        "kernel": kernel,
        "dtype": dtype,
        "size": size,
        "threads": 1,
        "impl": "qbench",
        "value": seconds,
        "gbps": cases.bytes_moved(kernel, dtype, size) / seconds / 1e9,
        "elements_per_s": size / seconds,
        "commit": "c",
    }


def test_summary_share_comes_from_the_side_by_side_ratio_with_its_note():
    t = pd.DataFrame([_t("quantize", "uint8", 2**24, 0.01), _t("sum", "uint8", 2**14, 1e-6)])
    sbs = pd.DataFrame(
        [
            {"kind": "ceiling", "kernel": "quantize", "dtype": "uint8", "size": 2**24, "threads": 1, "ratio": 0.8},
            {"kind": "ceiling", "kernel": "quantize", "dtype": "uint8", "size": 2**24, "threads": 2, "ratio": 3.0},
            {"kind": "ceiling", "kernel": "sum", "dtype": "uint8", "size": 2**14, "threads": 1, "ratio": 1.3},
        ]
    )
    table = summary_table(t, sbs, CACHES).set_index("kernel")
    assert table.loc["quantize", "% of ceiling"] == pytest.approx(80) and table.loc["quantize", "note"] == ""
    assert table.loc["sum", "% of ceiling"] == pytest.approx(130)
    assert table.loc["sum", "note"] == share_note("sum", "uint8", 2**14, CACHES)
    no_sbs = summary_table(t, sbs.iloc[0:0], CACHES)
    assert no_sbs["% of ceiling"].isna().all()


def _stub(nbytes, traffic):
    return _common.Prepared(lambda: None, nbytes, 0, traffic)


def test_side_by_side_ratio_is_ours_over_the_baselines_rate():
    mine, base = _stub(5, 6), _stub(8, 12)
    seconds = {id(mine): 1.0, id(base): 2.0}
    timer = lambda case: seconds[id(case)]  # noqa: E731
    assert _common.side_by_side(mine, base, by_traffic=False, rounds=3, timer=timer) == 2.0
    # Traffic per second: 6 B/s against 12 / 2 = 6 B/s.
    assert _common.side_by_side(mine, base, by_traffic=True, rounds=3, timer=timer) == 1.0
    rounds = iter([1.0, 1.0, 1.0, 4.0, 1.0, 2.0])  # ratios 1, 1/4, 2: the base is timed first in round 2
    got = _common.side_by_side(mine, base, by_traffic=False, rounds=3, timer=lambda case: next(rounds))
    assert got == float(np.median([1.0, 1.0 / 4.0, 2.0]))
