import numpy as np
import pytest

import qbench

QDTYPES = ["uint8", "int8", "uint16", "int16"]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def mid_zero_point(dtype: str) -> int:
    lo, hi = qbench.QUANT_DTYPES[np.dtype(dtype)]
    return (lo + hi) // 2
