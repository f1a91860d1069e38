"""The public operations: check the arguments, pick the kernel and its serial or parallel form, allocate the output.

Each module is one area (:mod:`convert`: quantize and dequantize; :mod:`sums`: sums, ``acc += x`` and dots;
:mod:`calibrate`; :mod:`blocks`: ONNX blocked and 4-bit; :mod:`ggml`; :mod:`matmul`; :mod:`metrics`), built
on :mod:`checks` (accepted inputs and their errors), :mod:`params` (the parameters' record), :mod:`views`
(contiguous runs of strided arrays) and :mod:`tuning` (the serial/parallel switch).
"""

from qbench.ops.convert import dequantize, quantize
from qbench.ops.sums import FLOAT_BLOCK, accumulate, dot, float_error_bound, qdot, sum
from qbench.ops.tuning import use_parallel

__all__ = [
    "FLOAT_BLOCK",
    "accumulate",
    "dequantize",
    "dot",
    "float_error_bound",
    "qdot",
    "quantize",
    "sum",
    "use_parallel",
]
