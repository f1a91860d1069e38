"""Instruction counts under callgrind: what the gate judges cache-resident kernels by."""

import sys

import pytest

from benchmarks.benchmarks import _counts
from qbench import cases

needs_valgrind = pytest.mark.skipif(_counts.valgrind() is None, reason="valgrind is not installed")


def test_a_dump_file_total_is_its_summary_line(tmp_path):
    dump = tmp_path / "callgrind.out.2"
    dump.write_text("# callgrind format\nversion: 1\nevents: Ir\nsummary: 1216453\n\nfn=(1) f\n3 10\ntotals: 1216453\n")
    assert _counts.dump_total(dump) == 1216453
    (tmp_path / "other").write_text("events: Ir\n")
    with pytest.raises(ValueError, match="no summary line: not a callgrind dump"):
        _counts.dump_total(tmp_path / "other")


def test_the_counted_points_are_the_gates_cache_points_of_every_family():
    points = cases.gate_points()
    assert {k for k, _, _ in points} == set(cases.FAMILIES)
    assert {p for _, _, p in points} == set(cases.grid.GATE_CACHE)
    assert len(points) == len({(k, d) for k, d, _ in points})  # one count per kernel and dtype


@needs_valgrind
@pytest.mark.slow
def test_counts_grow_with_the_work_and_repeat_exactly_enough():
    """Quantize of n, 2n and 4n values: the second doubling adds twice the instructions of the first (the loop;
    the entry's few thousand vary with the state of Python's heap, hence 15%); the same point counted twice in
    one run agrees within 1%. A point that cannot be built is None, and the others are still counted."""
    n = 2**16
    points = [("quantize", "uint8", n), ("quantize", "uint8", 2 * n), ("quantize", "uint8", 4 * n)]
    points += [("quantize", "uint8", 4 * n), ("no_such_kernel", "uint8", n)]
    c1, c2, c4, again, missing = _counts.count(points)
    assert c4 - c2 == pytest.approx(2 * (c2 - c1), rel=0.15)
    assert (c2 - c1) / n > 0.5  # about one instruction per value at least: the loop itself, not the entry
    assert again == pytest.approx(c4, rel=0.01)
    assert missing is None


def test_a_failed_child_is_an_error_with_its_output(tmp_path, monkeypatch):
    with pytest.raises(RuntimeError, match="boom failed \\(exit 3\\):\n.*no such thing"):
        _counts._run([sys.executable, "-c", "import sys; sys.stderr.write('no such thing'); sys.exit(3)"], {}, "boom")
