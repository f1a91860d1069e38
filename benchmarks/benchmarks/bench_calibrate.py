"""Calibration: how long each method takes, and the round-trip accuracy it buys."""

import numpy as np

import qbench

from ._common import _Timed, cases


class Calibrate(_Timed):
    params = [list(cases.CALIBRATION_METHODS), list(cases.calibration_sizes())]
    param_names = ["method", "size"]

    def setup(self, method: str, size: int) -> None:
        self.x = cases.make_distribution("normal", size)

    def time_calibrate(self, method: str, size: int) -> None:
        qbench.calibrate(self.x, "uint8", method=method)


class Accuracy:
    """SQNR and MSE of the quantize -> dequantize round trip, per method and data distribution."""

    params = [list(cases.CALIBRATION_METHODS), list(cases.DISTRIBUTIONS), list(cases.ACCURACY_DTYPES)]
    param_names = ["method", "distribution", "dtype"]
    timeout = 300

    def setup(self, method: str, distribution: str, dtype: str) -> None:
        x = cases.make_distribution(distribution, cases.ACCURACY_SIZE)
        p = qbench.calibrate(x, dtype, method=method)
        self.x, self.back = x, qbench.dequantize(qbench.quantize(x, p), p)
        if not np.all(np.isfinite(self.back)):
            raise AssertionError("round trip produced non-finite values")

    def track_sqnr_db(self, method: str, distribution: str, dtype: str) -> float:
        return qbench.metrics.sqnr_db(self.x, self.back)

    track_sqnr_db.unit = "dB"

    def track_mse(self, method: str, distribution: str, dtype: str) -> float:
        return qbench.metrics.mse(self.x, self.back)

    track_mse.unit = "squared units"
