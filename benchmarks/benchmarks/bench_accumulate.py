"""The accumulate family: whole-array sums, acc += x, dot products, quantized dot."""

from ._common import _KernelBench, cases


class Sum(_KernelBench):
    kernel = "sum"
    params, param_names = cases.kernel_grid(kernel)


class Accumulate(_KernelBench):
    kernel = "accumulate"
    params, param_names = cases.kernel_grid(kernel)


class Dot(_KernelBench):
    kernel = "dot"
    params, param_names = cases.kernel_grid(kernel)


class Qdot(_KernelBench):
    kernel = "qdot"
    params, param_names = cases.kernel_grid(kernel)
