"""Block formats: conversions to and from Q8_0, Q4_0 and ONNX int4 blocks, and their accuracy per bit.

Their matrix-vector products are variants of the linear layer (``bench_matmul``): ``Q8_0``, ``Q4_0``,
``nbits4``, ``nbits8``.
"""

import numpy as np

import qbench

from ._common import _KernelTime, _SideBySide, cases


class BlockQuantize(_KernelTime):
    kernel = "block_quantize"
    params, param_names = cases.kernel_grid(kernel)


class BlockDequantize(_KernelTime):
    kernel = "block_dequantize"
    params, param_names = cases.kernel_grid(kernel)


class BlockSideBySide(_SideBySide):
    """Each conversion over the NumPy reference, and its share of its bandwidth ceiling, side by side."""

    params, param_names = cases.blocks.side_by_side_grid()


class BlockAccuracy:
    """The round trip of a weight matrix through each format: SQNR (dB) and largest absolute error."""

    params = [list(cases.blocks.ACCURACY_FORMATS), ["normal", "uniform", "outliers"]]
    param_names = ["format", "weights"]
    timeout = 300

    def setup(self, fmt: str, weights: str) -> None:
        rows, k = cases.blocks.ACCURACY_WEIGHTS
        self.w = cases.make_distribution(weights, rows * k, seed=4).reshape(rows, k)
        try:
            self.back = cases.blocks.round_trip(fmt, self.w)
        except ImportError as exc:
            raise NotImplementedError(str(exc)) from exc

    def track_sqnr_db(self, fmt: str, weights: str) -> float:
        return qbench.metrics.sqnr_db(self.w, self.back)

    track_sqnr_db.unit = "dB"

    def track_max_error(self, fmt: str, weights: str) -> float:
        return float(np.abs(self.back.astype(np.float64) - self.w).max())

    track_max_error.unit = "absolute"
