"""quantize / dequantize, per tensor and per channel: float32 <-> 8/16-bit."""

from ._common import _KernelBench, cases


class Quantize(_KernelBench):
    kernel = "quantize"
    params, param_names = cases.kernel_grid(kernel)


class QuantizeAxis(_KernelBench):
    kernel = "quantize_axis"
    params, param_names = cases.kernel_grid(kernel)


class Dequantize(_KernelBench):
    kernel = "dequantize"
    params, param_names = cases.kernel_grid(kernel)


class DequantizeAxis(_KernelBench):
    kernel = "dequantize_axis"
    params, param_names = cases.kernel_grid(kernel)
