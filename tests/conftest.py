import os

# A tuning stored on this machine (qbench tune) must not steer the tests: they see the default switch,
# and so do the qbench processes they start. Set before qbench is imported, which reads the tuning.
os.environ["QBENCH_TUNING"] = "off"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import qbench  # noqa: E402
from qbench.kernels.isa import ENV, allowed  # noqa: E402

QDTYPES = ["uint8", "int8", "uint16", "int16"]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def mid_zero_point(dtype: str) -> int:
    lo, hi = qbench.QUANT_DTYPES[np.dtype(dtype)]
    return (lo + hi) // 2


@pytest.fixture(params=[p.name for p in allowed()] or ["avx2"])
def path(request, monkeypatch):
    """Each kernel path this host's compile target can run, in turn (``QBENCH_ISA``); a test parametrizes it
    indirectly to take fewer. A path the CPU cannot run is skipped, saying which."""
    if request.param not in [p.name for p in allowed()]:
        pytest.skip(f"this CPU cannot run the {request.param} kernel path")
    monkeypatch.setenv(ENV, request.param)
    return request.param


@pytest.fixture(autouse=True)
def _restore_numba_threads():
    """Benchmark cases set Numba's thread count (a thread budget); no test leaves its budget to the next."""
    import numba

    before = numba.get_num_threads()
    yield
    numba.set_num_threads(before)


# ---- the outside oracles: said at the end of every run, required where QBENCH_REQUIRE_ORACLES=1 (CI) ----------

#: The outside oracles: peer libraries, file formats' own packages, valgrind's instruction counter, a browser.
ORACLES = (
    "onnxruntime", "onnx", "torch", "gguf", "safetensors", "valgrind", "chromium", "peers", "actionlint", "mkdocs",
)  # fmt: skip
#: How a skip says that one is missing (not that a case does not apply, as "torch has no MatMulNBits" does).
ABSENT = ("not installed", "could not import", "no module named", "no chromium", "no peers module")
REQUIRE_ORACLES = os.environ.get("QBENCH_REQUIRE_ORACLES", "") == "1"


def _oracle_in(reason: str) -> str | None:
    """The oracle a skip's reason says is missing, if it says so."""
    text = reason.lower()
    if not any(phrase in text for phrase in ABSENT):
        return None
    return next((name for name in ORACLES if name in text), "a dependency")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under QBENCH_REQUIRE_ORACLES=1 a test skipped for want of an oracle fails, saying which one."""
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ORACLES and report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        oracle = _oracle_in(reason)
        if oracle:
            report.outcome = "failed"
            report.longrepr = f"QBENCH_REQUIRE_ORACLES=1 and an oracle test skipped ({oracle}): {reason}"


def pytest_terminal_summary(terminalreporter):
    """One line on what the outside oracles did: how many tests skipped for want of each, and the rest."""
    skipped = terminalreporter.stats.get("skipped", [])
    by_oracle: dict[str, int] = {}
    other = 0
    for report in skipped:
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
        oracle = _oracle_in(reason)
        if oracle:
            by_oracle[oracle] = by_oracle.get(oracle, 0) + 1
        else:
            other += 1
    missing = ", ".join(f"{n} for want of {o}" for o, n in sorted(by_oracle.items()))
    terminalreporter.write_line(
        f"qbench oracles: {len(skipped)} test(s) skipped"
        + (f" ({missing}; install what they name, as .ci/run does)" if missing else ", none for want of an oracle")
        + (f"; {other} for other reasons (listed above)" if other else "")
    )
