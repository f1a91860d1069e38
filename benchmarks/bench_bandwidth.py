"""This machine's memory-bandwidth ceiling at every size: copy, read and write of float32."""

import numpy as np

from qbench import cases
from qbench.kernels import bandwidth

from ._common import Prepared, _Timed, median_rate, set_threads


class Bandwidth(_Timed):
    params, param_names = cases.bandwidth_grid()

    def setup(self, size: int, op: str, threads: int) -> None:
        par = set_threads(threads, "qbench")
        src = np.ones(size, np.float32)
        dst = np.empty(size, np.float32)
        calls = {
            "copy": lambda: bandwidth.copy(src, dst, parallel=par),
            "read": lambda: bandwidth.read(src, parallel=par),
            "write": lambda: bandwidth.write(dst, np.float32(1), parallel=par),
        }
        self.case = Prepared(calls[op], cases.bytes_moved(op, "float32", size), size, 0)
        self.case.run()  # compile outside the timing

    def time_run(self, size: int, op: str, threads: int) -> None:
        self.case.run()

    def track_gbps(self, size: int, op: str, threads: int) -> float:
        return self.case.nbytes / median_rate(self.case) / 1e9

    track_gbps.unit = "GB/s"
