"""What this machine is: the CPU (:mod:`qbench.cpu`), its OS, and the software that compiled the kernels."""

from __future__ import annotations

import platform
from typing import Any

from qbench.cpu import cache_sizes, cpu_identity, describe_cpu  # noqa: F401 - re-exported


def describe() -> dict[str, Any]:
    """A dictionary of facts about this machine and its software, for report headers."""
    import llvmlite
    import numba
    import numpy

    from qbench.ops import tuning

    return {
        **describe_cpu(),
        "numba_threads": int(numba.config.NUMBA_NUM_THREADS),
        "parallel_switch": tuning.summary(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "llvmlite": llvmlite.__version__,
        "threading_layer": _threading_layer(),
        "blas": numpy_blas(),
    }


def numpy_blas() -> str:
    """The BLAS NumPy's float32 matmul runs here and the kernels it picked for this CPU (threadpoolctl)."""
    import numpy  # noqa: F401 - loads the BLAS that threadpoolctl inspects
    from threadpoolctl import threadpool_info

    found = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not found:
        return "none found"
    return "; ".join(
        f"{i.get('internal_api', '?')} {i.get('version') or ''} ({i.get('architecture') or 'kernels not reported'}"
        f", {i.get('threading_layer', '?')} threads)".replace("  ", " ")
        for i in found
    )


def _threading_layer() -> str:
    """The Numba threading layer a parallel kernel gets here (runs one tiny parallel kernel)."""
    import numba
    import numpy as np

    from qbench.kernels import bandwidth

    bandwidth.write(np.empty(4, np.float32), np.float32(0), parallel=True)
    return str(numba.threading_layer())
