"""Ratios measured side by side: qbench and a baseline timed alternately in one process.

Two processes on a shared machine differ far more than calls within one, so the
ratio of two asv results is mostly noise. Each grid point here
is one :class:`qbench.cases.Comparison`: qbench against a peer library, the
NumPy reference, its own float32 twin, the bandwidth ceiling, or one thread.
"""

from ._common import _SideBySide, cases


class SideBySide(_SideBySide):
    params, param_names = cases.side_by_side_grid()
