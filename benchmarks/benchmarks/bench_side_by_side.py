"""Ratios measured side by side: qbench and a baseline timed alternately in one process.

A shared machine runs the same code up to 1.7x faster in one process than in
another, so the ratio of two asv results is mostly noise. Each grid point here
is one :class:`qbench.cases.Comparison`: qbench against a peer library, the
NumPy reference, its own float32 twin, the bandwidth ceiling, or one thread.
"""

from ._common import _SideBySide, cases


class SideBySide(_SideBySide):
    params, param_names = cases.side_by_side_grid()
