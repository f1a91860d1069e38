"""asv's statistics, used by ``qbench compare`` and ``qbench history``, behind one door.

``_stats`` is asv's private module: a release may move or change it without
notice. So qbench calls it only from here, for the asv versions it was tested
with (:data:`SUPPORTED`, the same range ``pyproject.toml`` pins), and any other
version fails loudly, naming itself, instead of silently changing a verdict.
"""

from __future__ import annotations

from typing import Any

#: asv releases whose ``_stats`` qbench was tested with: [low, high).
SUPPORTED = ((0, 6, 4), (0, 7, 0))


class AsvVersionError(RuntimeError):
    """The installed asv is outside the range qbench's statistics were tested with."""


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts + [0] * (3 - len(parts)))


def _asv() -> Any:
    import asv

    low, high = SUPPORTED
    if not low <= _version(asv.__version__) < high:
        raise AsvVersionError(
            f"asv {asv.__version__} is installed; qbench's comparisons use asv's internal statistics, tested with "
            f"asv >= {'.'.join(map(str, low))}, < {'.'.join(map(str, high))}: "
            f'pip install "asv>={".".join(map(str, low))},<{".".join(map(str, high))}"'
        )
    return asv


def mann_whitney_u(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of asv's Mann-Whitney U test of two samples."""
    _asv()
    from asv import _stats

    _, p = _stats.mann_whitney_u(a, b)
    return float(p)


def is_different(stats_a: dict[str, float], stats_b: dict[str, float]) -> bool:
    """asv's own rule from two 99% confidence intervals (``ci_99_a``, ``ci_99_b``) when samples are missing."""
    _asv()
    from asv import _stats

    return bool(_stats.is_different(None, None, stats_a, stats_b))
