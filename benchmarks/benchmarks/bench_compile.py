"""JIT cost, measured on its own: import, first call from the disk cache, and a cold compile."""

import os
import subprocess
import sys
import tempfile

FIRST_CALL = """
import numpy as np, qbench
x = np.ones(1000, np.float32)
p = qbench.QuantParams(0.5, 3, "uint8")
"""


def timeraw_import_qbench():
    """A fresh process's ``import qbench``."""
    return "import qbench"


def timeraw_first_quantize_cached():
    """A fresh process's first quantize call, kernels loaded from the on-disk cache."""
    return "qbench.quantize(x, p, parallel=False)", FIRST_CALL


def track_compile_quantize_seconds():
    """Compiling quantize's serial kernel from scratch (empty cache), in a fresh process."""
    code = FIRST_CALL + (
        "import time\nstart = time.perf_counter()\nqbench.quantize(x, p, parallel=False)\n"
        "print(time.perf_counter() - start)"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


track_compile_quantize_seconds.unit = "seconds"
track_compile_quantize_seconds.timeout = 300
