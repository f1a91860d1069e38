"""Instructions per call of every kernel and dtype at the gate's cache-resident point (Valgrind's callgrind).

What the regression gate (``qbench compare --gate``) judges cache-resident
kernels by: a count does not move when other work shares the machine, a time
does. One callgrind process per commit counts every point (``setup_cache``);
``qbench run``, and ``compare``/``history`` without ``-b``, leave this module out (it needs Valgrind, and a minute).
"""

from . import _counts
from ._common import cases


class Instructions:
    params = [[f"{kernel}:{dtype}" for kernel, dtype, _ in cases.gate_points()]]
    param_names = ["case"]
    rounds = 1  # a count is the same in every round
    timeout = 1800

    def setup_cache(self) -> dict[str, float] | str:
        if _counts.valgrind() is None:
            return "valgrind is not installed: instruction counts need it (Debian/Ubuntu: apt-get install valgrind)"
        points = cases.gate_points()
        counts = _counts.count(points)
        return {f"{k}:{d}": n for (k, d, _), n in zip(points, counts, strict=True) if n is not None}

    def setup(self, counts: dict[str, float] | str, case: str) -> None:
        if isinstance(counts, str):
            raise NotImplementedError(counts)
        if case not in counts:
            raise NotImplementedError(f"{case} could not be built here")

    def track_instructions(self, counts: dict[str, float], case: str) -> float:
        return counts[case]

    track_instructions.unit = "instructions"
