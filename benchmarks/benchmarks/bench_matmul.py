"""Linear layers ``y = x @ W.T``: float32 against int8 (static, dynamic), GEMV to GEMM, and their accuracy."""

import numpy as np

import qbench

from ._common import _KernelTime, _Timed, cases, prepared_layer_pair, side_by_side_rounds


class Matmul(_KernelTime):
    """Time per call of every variant and implementation; the report derives GOP/s and weight GB/s."""

    kernel = "matmul"
    params, param_names = cases.kernel_grid(kernel)


class MatmulSideBySide(_Timed):
    """One ratio per shape: qbench's layer over a baseline timed alternately in this process."""

    params = [list(cases.layer_shapes()), list(cases.matmul.COMPARISONS), list(cases.layer_threads())]
    param_names = ["shape", "comparison", "threads"]
    pair_rounds = 5 if cases.quick() else 11

    def setup(self, shape: str, comparison: str, threads: int) -> None:
        self.mine, self.base, self.per_work = prepared_layer_pair(comparison, shape, threads)

    def track_ratio(self, shape: str, comparison: str, threads: int) -> float:
        ratios = side_by_side_rounds(self.mine, self.base, per_byte=self.per_work, rounds=self.pair_rounds)
        return float(np.median(ratios))

    track_ratio.unit = "ratio"


class MatmulAccuracy:
    """SQNR (dB) of the int8 layer's output against the float32 layer's, on held-out activations.

    Weights int8 per output channel (symmetric). ``static``: activations quantized
    with parameters calibrated by ``method`` on another batch of the same kind;
    ``dynamic``: each batch quantized from its own range at run time. The output
    compared is the integer product rescaled to float (``acc * sa * sb``), so the
    activations' quantization is the only difference between the methods.
    """

    params = [list(cases.matmul.ACCURACY_METHODS), list(cases.matmul.ACTIVATIONS)]
    param_names = ["method", "activations"]
    timeout = 300

    def setup(self, method: str, activations: str) -> None:
        m, k, n = cases.matmul.dims(cases.matmul.ACCURACY_SHAPE)
        calibration = cases.make_distribution(activations, m * k, seed=1).reshape(m, k)
        x = cases.make_distribution(activations, m * k, seed=2).reshape(m, k)
        w = cases.make_distribution("normal", n * k, seed=3).reshape(n, k) / np.float32(np.sqrt(k))
        pw = qbench.calibrate(w, "int8", axis=0, symmetric=True)
        b = qbench.quantize(w, pw).T
        if method == "dynamic":
            qx, px = qbench.dynamic_quantize_linear(x)
        else:
            px = qbench.calibrate(calibration, "uint8", method=method)
            qx = qbench.quantize(x, px)
        acc = qbench.matmul_integer(qx, b, px.zero_point, 0)
        self.got = acc.astype(np.float32) * (np.float32(px.scale) * pw.scale)
        self.want = x.astype(np.float64) @ w.T.astype(np.float64)

    def track_sqnr_db(self, method: str, activations: str) -> float:
        return qbench.metrics.sqnr_db(self.want, self.got)

    track_sqnr_db.unit = "dB"
