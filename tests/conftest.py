import os

# A tuning stored on this machine (qbench tune) must not steer the tests: they see the default switch,
# and so do the qbench processes they start. Set before qbench is imported, which reads the tuning.
os.environ["QBENCH_TUNING"] = "off"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import qbench  # noqa: E402

QDTYPES = ["uint8", "int8", "uint16", "int16"]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def mid_zero_point(dtype: str) -> int:
    lo, hi = qbench.QUANT_DTYPES[np.dtype(dtype)]
    return (lo + hi) // 2


@pytest.fixture(autouse=True)
def _restore_numba_threads():
    """Benchmark cases set Numba's thread count (a thread budget); no test leaves its budget to the next."""
    import numba

    before = numba.get_num_threads()
    yield
    numba.set_num_threads(before)
