"""The command line: the demo runs end to end and its numbers are consistent."""

import subprocess
import sys

import pytest

from qbench.cli import main
from qbench.measure.demo import run_demo


def test_demo_numbers(capsys):
    size = 1 << 16
    res = run_demo(size=size)
    # What the demo stored: one byte per value, from four (a wrong dtype or a copy would show here).
    assert (res["float32_bytes"], res["quantized_bytes"]) == (4 * size, size)
    assert res["memory_ratio"] == res["float32_bytes"] / res["quantized_bytes"]
    # The round trip of a correct quantizer errs by at most half a step.
    assert res["max_abs_error"] <= res["scale/2"] * 1.0001
    assert 30 < res["sqnr_db"] < 60  # 8 bits of a normal distribution: about 40 dB
    # Each speed ratio is the baseline's time over qbench's, taken within each round: its median lies between
    # the rounds' extremes, and on the side of 1 that the medians of the two times put it.
    for ratio, slow, fast in (
        ("quantize_vs_numpy", "numpy_quantize_s", "quantize_s"),
        ("quantize_vs_copy", "copy_s", "quantize_s"),
        ("sum_uint8_vs_float32", "sum_float32_s", "sum_uint8_s"),
    ):
        assert res[f"{ratio}_low"] <= res[ratio] <= res[f"{ratio}_high"]
        assert res[f"{ratio}_low"] <= res[slow] / res[fast] <= res[f"{ratio}_high"]
    out = capsys.readouterr().out
    assert f"SQNR {res['sqnr_db']:.2f} dB" in out
    assert f"quantize {res['quantize_vs_numpy']:.1f}x the NumPy reference" in out
    assert f"(rounds: {res['quantize_vs_numpy_low']:.2f} to {res['quantize_vs_numpy_high']:.2f})" in out
    assert f"({res['memory_ratio']:.1f}x smaller)" in out


def test_python_m_qbench_demo():
    out = subprocess.run(
        [sys.executable, "-m", "qbench", "demo", "--size", "5000"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "4.0x smaller" in out.stdout


def test_unknown_command_exits_with_usage(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
