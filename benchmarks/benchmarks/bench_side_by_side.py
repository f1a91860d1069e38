"""Ratios measured side by side: qbench and a baseline timed alternately in one process.

A shared machine runs the same code up to 1.7x faster in one process than in
another, so the ratio of two asv results is mostly noise. Each grid point here
is one :class:`qbench.cases.Comparison`: qbench against a peer library, the
NumPy reference, its own float32 twin, the bandwidth ceiling, or one thread.
"""

import numpy as np

from ._common import _Timed, cases, prepared_pair, record_rounds, side_by_side_rounds


class SideBySide(_Timed):
    params, param_names = cases.side_by_side_grid()
    pair_rounds = 5 if cases.quick() else 11

    def setup(self, size: int, comparison: str, threads: int) -> None:
        self.mine, self.base = prepared_pair(comparison, size, threads)
        self.per_byte = cases.Comparison.parse(comparison).kind == "ceiling"

    def track_ratio(self, size: int, comparison: str, threads: int) -> float:
        ratios = side_by_side_rounds(self.mine, self.base, per_byte=self.per_byte, rounds=self.pair_rounds)
        record_rounds(comparison, size, threads, ratios)  # asv keeps the median; the report shows the spread
        return float(np.median(ratios))

    track_ratio.unit = "ratio"
