"""Memory: footprint per element, extra allocation per implementation, process peak."""

import numpy as np

from ._common import cases, extra_allocation, prepared


class Memory:
    """At one size (2**20 elements), each kernel and dtype, qbench against the NumPy reference."""

    params, param_names = cases.memory_grid()
    timeout = 300

    def setup(self, case: str, impl: str) -> None:
        self.kernel, self.dtype = case.split(":")
        self.case = prepared(self.kernel, self.dtype, cases.MEMORY_SIZE, 1, impl)

    def track_extra_alloc_bytes(self, case: str, impl: str) -> int:
        """Bytes allocated during one call beyond its output (tracemalloc)."""
        return extra_allocation(self.case)

    track_extra_alloc_bytes.unit = "bytes"

    def track_bytes_per_element(self, case: str, impl: str) -> int:
        """Bytes one element of the kernel's data occupies (in + out): float32 -> uint8 is 4 + 1."""
        return cases.bytes_moved(self.kernel, self.dtype, 1)

    track_bytes_per_element.unit = "bytes"

    def peakmem_run(self, case: str, impl: str) -> None:
        """Process peak RSS during calls (includes Python, NumPy and Numba's own ~150 MB)."""
        for _ in range(3):
            self.case.run()


class Footprint:
    """Array footprint per dtype at every size: the 4:1 of float32 against 8-bit."""

    params = [list(cases.sizes()), ["float32", "float64", "uint8", "int8", "uint16", "int16", "int32"]]
    param_names = ["size", "dtype"]

    def track_footprint_bytes(self, size: int, dtype: str) -> int:
        return int(np.empty(size, dtype).nbytes)

    track_footprint_bytes.unit = "bytes"
