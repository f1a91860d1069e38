"""This machine's memory-bandwidth ceiling at every size: copy, read and write of float32."""

from ._common import _Timed, cases, median_seconds, prepared


class Bandwidth(_Timed):
    params, param_names = cases.bandwidth_grid()

    def setup(self, size: int, op: str, threads: int) -> None:
        self.case = prepared(op, "float32", size, threads, "qbench")

    def time_run(self, size: int, op: str, threads: int) -> None:
        self.case.run()

    def track_gbps(self, size: int, op: str, threads: int) -> float:
        return self.case.nbytes / median_seconds(self.case) / 1e9

    track_gbps.unit = "GB/s"
