"""qbench: measure what quantization buys on a CPU.

ONNX-exact quantize/dequantize, exact accumulate kernels and quantized matrix
multiply (ONNX MatMulInteger, QLinearMatMul, DynamicQuantizeLinear), ONNX blocked
and 4-bit quantization and ggml's block formats (``qbench.ggml``) in Numba,
a NumPy reference of each (``qbench.reference``), calibration, and error metrics.
"""

from qbench import metrics, reference
from qbench.api import accumulate, dequantize, dot, float_error_bound, qdot, quantize, sum
from qbench.blocks import pack_int4, unpack_int4
from qbench.calibrate import calibrate
from qbench.matmul import dynamic_quantize_linear, dynamic_quantize_matmul, matmul_integer, qlinear_matmul
from qbench.params import QUANT_DTYPES, QuantParams, quant_range

__version__ = "0.1.0"

__all__ = [
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
    "qlinear_matmul",
    "qdot",
    "quant_range",
    "quantize",
    "reference",
    "sum",
    "unpack_int4",
]
