"""Memory-bandwidth probes: the ceiling every memory-bound kernel is judged against."""

import numpy as np
from numba import prange

from qbench.kernels._jit import REASSOC, kernel


@kernel
def copy(src, dst):
    """Read one array, write another: the ceiling of a read+write kernel."""
    for i in prange(src.shape[0]):
        dst[i] = src[i]


@kernel(fastmath=REASSOC)
def read(src):
    """Read an array (a reassociated sum keeps the loads live and costs almost nothing)."""
    s = np.float32(0)
    for i in prange(src.shape[0]):
        s += src[i]
    return s


@kernel
def write(dst, value):
    """Write an array without reading it."""
    for i in prange(dst.shape[0]):
        dst[i] = value
