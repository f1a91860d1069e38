"""qbench: measure what quantization buys on a CPU.

ONNX-exact quantize/dequantize, exact accumulate kernels and quantized matrix
multiply (ONNX MatMulInteger, QLinearMatMul, DynamicQuantizeLinear), ONNX blocked
and 4-bit quantization, ggml's block formats (``qbench.ggml``) and MatMulNBits with int8 activations
(``qbench.nbits``) in Numba,
a NumPy reference of each (``qbench.reference``), calibration, and error metrics.

The package is layered, each layer importing only those above it in this list:
``kernels`` (Numba) and ``cpu``; ``ops`` (the public operations); ``reference`` and
``peers`` (the same operations in NumPy and in other libraries); ``cases`` (the
benchmark registry); ``measure``; ``analysis``; ``model``; ``report``; ``cli``.
"""

import sys as _sys

from qbench import reference
from qbench.ops import accumulate, dequantize, dot, float_error_bound, metrics, qdot, quantize, sum
from qbench.ops.blocks import pack_int4, unpack_int4
from qbench.ops.calibrate import calibrate
from qbench.ops.matmul import (
    PackedWeights,
    dynamic_quantize_linear,
    dynamic_quantize_matmul,
    matmul_integer,
    pack_weights,
    qlinear_matmul,
)
from qbench.ops.params import QUANT_DTYPES, QuantParams, quant_range

__version__ = "0.1.0"

# The public modules keep their first import paths (``qbench.blocks``, ``from qbench.params import ...``).
from qbench import ops as api  # noqa: E402
from qbench.ops import blocks, ggml, matmul, nbits, params  # noqa: E402
from qbench.ops import calibrate as _calibrate_module  # noqa: E402

for _name, _module in {
    "api": api,
    "blocks": blocks,
    "calibrate": _calibrate_module,
    "ggml": ggml,
    "matmul": matmul,
    "metrics": metrics,
    "nbits": nbits,
    "params": params,
}.items():
    _sys.modules[f"qbench.{_name}"] = _module

__all__ = [
    "PackedWeights",
    "QUANT_DTYPES",
    "QuantParams",
    "accumulate",
    "calibrate",
    "dequantize",
    "dot",
    "dynamic_quantize_linear",
    "dynamic_quantize_matmul",
    "float_error_bound",
    "matmul_integer",
    "metrics",
    "pack_int4",
    "pack_weights",
    "qlinear_matmul",
    "qdot",
    "quant_range",
    "quantize",
    "reference",
    "sum",
    "unpack_int4",
]
