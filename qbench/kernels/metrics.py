"""Round-trip error of a quantized tensor in one pass: per row, the signal and noise energy and the worst error.

The float64 sums are reassociated (vector lanes, then across lanes): the
order changes the last bits of a sum of squares, which an SQNR in dB does
not see; the maximum is exact whatever the order.
"""

import numpy as np
from numba import prange

from qbench.kernels._jit import REASSOC, kernel


@kernel(fastmath=REASSOC)
def error_rows(x, y, signal, noise, worst):
    """For each row r of the 2-D float32 arrays ``x`` (original) and ``y`` (round trip), in float64:
    ``signal[r] = sum x**2``, ``noise[r] = sum (x - y)**2``, ``worst[r] = max |x - y|``."""
    for r in prange(x.shape[0]):
        a = x[r]
        b = y[r]
        s = 0.0
        e = 0.0
        w = 0.0
        for i in range(a.shape[0]):
            v = np.float64(a[i])
            d = v - np.float64(b[i])
            s += v * v
            e += d * d
            w = max(w, abs(d))
        signal[r] = s
        noise[r] = e
        worst[r] = w
