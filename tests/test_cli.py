"""The command line: the demo runs end to end and its numbers are consistent."""

import subprocess
import sys

import pytest

from qbench.cli import main
from qbench.demo import run_demo


def test_demo_numbers(capsys):
    res = run_demo(size=1 << 16)
    assert res["memory_ratio"] == 4.0
    assert res["max_abs_error"] <= res["scale/2"] * 1.0001
    assert 30 < res["sqnr_db"] < 60  # 8 bits of a normal distribution: about 40 dB
    assert res["quantize_vs_numpy"] > 0 and res["sum_uint8_vs_float32"] > 0
    assert "SQNR" in capsys.readouterr().out


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
