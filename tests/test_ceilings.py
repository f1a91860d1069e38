"""Shares of a bandwidth ceiling compare like with like: the kernel's own streams or equal bytes, excess explained."""

import numpy as np
import pandas as pd
import pytest

from benchmarks.benchmarks import _common
from qbench import cases
from qbench.report import share_note, share_over_one, summary_table

CACHES = {"L1": 48 * 1024, "L2": 1 << 20, "L3": 32 << 20}
ALL_CASES = [(k, d) for k, case in cases.KERNELS.items() for d in case.dtypes]
#: Kernels judged against a pattern probe of their own streams (the rest against a float32 read or write).
WRITING_CASES = [(k, d) for k, d in ALL_CASES if cases.KERNELS[k].ceiling in ("stream", "update")]


def test_bytes_moved_follows_the_design_rules():
    # The rules as the design notes state them, per element.
    assert cases.bytes_moved("quantize", "uint8", 1) == 4 + 1
    assert cases.bytes_moved("dequantize", "uint8", 1) == 1 + 4
    assert cases.bytes_moved("sum", "uint8", 1) == 1
    assert cases.bytes_moved("accumulate", "float32+=uint8", 1) == 4 + 1 + 4
    assert cases.bytes_moved("copy", "float32", 1) == 8 and cases.bytes_moved("read", "float32", 1) == 4


@pytest.mark.parametrize("kernel,dtype", WRITING_CASES)
def test_a_pattern_probe_moves_exactly_the_kernels_bytes(kernel, dtype):
    probe = cases.probe_streams(kernel, dtype)
    assert [(np.dtype(d).itemsize, m) for d, m in probe] == [
        (np.dtype(d).itemsize, m) for d, m in cases.streams(kernel, dtype)
    ]
    assert all(np.dtype(d).kind == "u" for d, _ in probe)  # no arithmetic: plain moves of unsigned ints
    built = _common.prepare_probe(kernel, dtype, 4096, 1)
    assert built.nbytes == cases.bytes_moved(kernel, dtype, 4096)


def test_probes_move_what_they_say():
    from qbench.kernels import bandwidth

    src = np.arange(1000, dtype=np.uint32) * 1001
    narrow, wide = np.empty(1000, np.uint8), np.empty(1000, np.uint32)
    bandwidth.copy(src, narrow)
    bandwidth.copy(narrow, wide)
    assert np.array_equal(narrow, src.astype(np.uint8)) and np.array_equal(wide, narrow)
    acc = src.copy()
    bandwidth.update(acc, narrow)
    assert np.array_equal(acc, src ^ narrow)


@pytest.mark.parametrize("kernel,dtype", ALL_CASES)
@pytest.mark.parametrize("size", [2**10, 2**14, 2**24])
def test_the_probe_gets_the_same_working_set(kernel, dtype, size):
    m = cases.ceiling_size(kernel, dtype, size)
    probe = cases.KERNELS[kernel].ceiling
    if probe in ("read", "write"):
        per_element = cases.footprint(probe, "float32", 1)
        assert abs(cases.footprint(probe, "float32", m) - cases.footprint(kernel, dtype, size)) <= per_element / 2
        if cases.footprint(kernel, dtype, size) < 4 * size:
            assert m < size  # narrower data: fewer float32 values, not the same count
    else:
        probe_bytes = sum(np.dtype(d).itemsize for d, _ in cases.probe_streams(kernel, dtype))
        assert m == size and probe_bytes * m == cases.footprint(kernel, dtype, size)


def test_a_share_is_over_one_when_the_pages_show_it_so():
    assert not share_over_one(1.004) and share_over_one(1.006) and not share_over_one(float("nan"))


def test_a_share_above_one_is_explained_by_what_bounds_the_probe():
    assert share_note("sum", "uint8", 2**14, CACHES).startswith("in cache (16 KiB <= L2)")
    assert share_note("quantize", "uint8", 2**18, CACHES).startswith("outside the private caches")  # 1.25 MiB > L2
    assert "measurement spread" in share_note("quantize", "uint8", 2**24, CACHES)


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


def _stub(nbytes):
    return _common.Prepared(lambda: None, nbytes, 0)


def test_side_by_side_ratio_is_ours_over_the_baselines_rate():
    mine, base = _stub(5), _stub(10)
    seconds = {id(mine): 1.0, id(base): 2.0}
    timer = lambda case: seconds[id(case)]  # noqa: E731
    assert _common.side_by_side(mine, base, per_byte=False, rounds=3, timer=timer) == 2.0
    # Bytes per second: 5 B/s against 10 / 2 = 5 B/s.
    assert _common.side_by_side(mine, base, per_byte=True, rounds=3, timer=timer) == 1.0
    rounds = iter([1.0, 1.0, 1.0, 4.0, 1.0, 2.0])  # ratios 1, 1/4, 2: the base is timed first in round 2
    got = _common.side_by_side(mine, base, per_byte=False, rounds=3, timer=lambda case: next(rounds))
    assert got == float(np.median([1.0, 1.0 / 4.0, 2.0]))


@pytest.mark.skipif(__import__("numba").config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_each_case_of_a_thread_pair_runs_with_its_own_budget():
    import numba

    mine, base = _common.prepared_pair("sum uint8 / 1 thread", 1 << 16, 2)
    assert (mine.threads, base.threads) == (2, 1)
    _common.median_seconds(base, 0.001)
    assert numba.get_num_threads() == 1  # the baseline really ran with one thread
    _common.median_seconds(mine, 0.001)
    assert numba.get_num_threads() == 2


class _Traffic:
    """The bandwidth probes with every call counted and its effect checked: what a probe actually touches.

    Each wrapper records the bytes its arrays hold (an updated array counts twice: read and written) and checks
    that the kernel moved all of them (a copy's destination equals its source, an update is the xor of both, a
    read's sum is the sum of every element, a write leaves no element unwritten), so a probe that is handed half
    its arrays, or whose loop stops half way, is caught whatever number it reports.
    """

    def __init__(self, monkeypatch):
        from qbench.kernels import bandwidth

        self.moved: list[int] = []
        real = {name: getattr(bandwidth, name) for name in ("copy", "update", "read", "write")}

        def copy(src, dst, parallel=False):
            dst[...] = 0 if dst.dtype.kind in "iu" else np.nan
            real["copy"](src, dst, parallel=parallel)
            assert np.array_equal(dst, src.astype(dst.dtype)), "copy left part of its destination unwritten"
            self.moved.append(src.nbytes + dst.nbytes)

        def update(acc, x, parallel=False):
            want = acc ^ x.astype(acc.dtype)
            real["update"](acc, x, parallel=parallel)
            assert np.array_equal(acc, want), "update left part of its array untouched"
            self.moved.append(2 * acc.nbytes + x.nbytes)

        def read(src, parallel=False):
            total = real["read"](src, parallel=parallel)
            assert total == pytest.approx(float(src.astype(np.float64).sum()), rel=1e-3), "read skipped elements"
            self.moved.append(src.nbytes)
            return total

        def write(dst, value, parallel=False):
            dst[...] = np.float32(value) + 1
            real["write"](dst, value, parallel=parallel)
            assert np.all(dst == value), "write left part of its array unwritten"
            self.moved.append(dst.nbytes)

        for name, spy in {"copy": copy, "update": update, "read": read, "write": write}.items():
            monkeypatch.setattr(bandwidth, name, spy)


@pytest.mark.parametrize("kernel,dtype", ALL_CASES)
def test_each_kernels_probe_moves_the_bytes_it_is_judged_by(kernel, dtype, monkeypatch):
    """Counted through the wrapper, not read back from the number the probe was given."""
    traffic = _Traffic(monkeypatch)
    size = 4096
    built = _common.prepare_probe(kernel, dtype, size, 1)
    traffic.moved.clear()
    built.run()
    assert traffic.moved == [built.nbytes]
    probe = cases.KERNELS[kernel].ceiling
    if probe in ("read", "write"):  # equal bytes: the float32 probe at the kernel's working set
        assert abs(built.nbytes - cases.footprint(kernel, dtype, size)) <= 4
    else:
        assert built.nbytes == cases.bytes_moved(kernel, dtype, size)


@pytest.mark.parametrize("op", sorted(cases.BANDWIDTH_OPS))
def test_the_float32_probes_move_every_byte(op, monkeypatch):
    traffic = _Traffic(monkeypatch)
    built = _common.prepare(op, "float32", 5000, 1, "qbench")
    traffic.moved.clear()
    built.run()
    assert traffic.moved == [cases.bytes_moved(op, "float32", 5000)] == [built.nbytes]
