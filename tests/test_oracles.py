"""The suite says which outside oracles did not run, and CI (QBENCH_REQUIRE_ORACLES=1) fails when one did not."""

from pathlib import Path

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")
SKIPPING = """
import pytest

def test_needs_a_peer():
    pytest.importorskip("no_such_onnxruntime_module")

def test_needs_two_threads():
    pytest.skip("needs two Numba threads")

def test_plain():
    pass
"""


def test_a_skipped_oracle_is_counted_at_the_end(pytester, monkeypatch):
    monkeypatch.delenv("QBENCH_REQUIRE_ORACLES", raising=False)
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_skipping=SKIPPING)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["qbench oracles: 2 test(s) skipped (1 for want of onnxruntime; *; 1 for other*"])


def test_a_skipped_oracle_fails_where_oracles_are_required(pytester, monkeypatch):
    monkeypatch.setenv("QBENCH_REQUIRE_ORACLES", "1")
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_skipping=SKIPPING)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, skipped=1, failed=1)
    result.stdout.fnmatch_lines(["*QBENCH_REQUIRE_ORACLES=1 and an oracle test skipped (onnxruntime)*"])
