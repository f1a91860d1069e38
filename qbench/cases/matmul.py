"""The matrix-multiply family: a linear layer ``y = x @ W.T``, float32 and int8, every way users run it.

Variants (the family's ``dtype`` axis):

- ``float32``: the float layer (qbench's own loop of the int8 blocking, NumPy's BLAS, ONNX Runtime
  ``MatMul``, PyTorch ``linear``);
- ``static``: uint8 activations quantized beforehand with calibrated parameters, int8 weights per output
  channel, uint8 output (ONNX ``QLinearMatMul``; PyTorch's quantized ``linear``);
- ``dynamic``: float32 in and out, activations quantized at run time from their own range (ONNX Runtime
  ``DynamicQuantizeMatMul``; PyTorch ``linear_dynamic``);
- ``integer``: the raw int32 product (ONNX ``MatMulInteger``), qbench's weights packed once (``pack_weights``), as
  every peer packs its constant weights;
- ``integer_kn``: the same product on weights as an ONNX model stores them, a C-ordered (K, N) ``b``, unpacked;
- ``quantize_x``: the part of ``dynamic`` that quantizes the activations at run time, alone (its overhead);
- the block formats, float32 in and out: ``Q8_0`` and ``Q4_0`` (ggml's, llama.cpp's CPU path: activations to
  Q8_0, weights packed once by ``qbench.ops.ggml.pack_blocks``, ``ggml.matmul``, any M), ``nbits4`` and ``nbits8``
  (ONNX Runtime's ``MatMulNBits``, blocks of 32 with a float32 scale each: ``qbench.ops.blocks.matmul_nbits``,
  matrix-vector products only, M = 1).

A shape is ``"MxKxN"``: M rows of activations (1 is the GEMV of LLM decoding), K inputs, N outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

from qbench import reference
from qbench.ops.calibrate import calibrate
from qbench.ops.params import QuantParams

from .grid import layer_shapes_override, quick, quick_threads
from .layer_blocks import BLOCK_BITS, CHECK_ROWS, INT8_NBITS, block_data, check_block, qbench_block
from .registry import READ, WRITE, Buffers, Family, Operand, Shape, peers_module

#: GEMV (M = 1) with weights from inside L2 to well beyond L3, and batched GEMM.
SHAPES_FULL = (
    "1x1024x1024",
    "1x4096x11008",
    "8x1024x1024",
    "64x1024x1024",
    "512x1024x1024",
    *(f"{m}x4096x4096" for m in (1, 2, 4, 8, 16, 64, 256)),
)
#: The quick grid: a GEMV in cache, one from DRAM, one GEMM.
SHAPES_QUICK = ("1x1024x1024", "1x4096x11008", "64x4096x4096")
VARIANTS = ("float32", "static", "dynamic", "integer", "integer_kn", "quantize_x", *BLOCK_BITS)
#: (activations, weights, output) dtypes of each variant (``quantize_x`` reads no weights).
VARIANT_TYPES = {
    "float32": ("float32", "float32", "float32"),
    "static": ("uint8", "int8", "uint8"),
    "dynamic": ("float32", "int8", "float32"),
    "integer": ("uint8", "int8", "int32"),
    "integer_kn": ("uint8", "int8", "int32"),
    "quantize_x": ("float32", None, "uint8"),
    **{variant: ("float32", "uint8", "float32") for variant in BLOCK_BITS},
}
#: Bits per weight of every variant that reads weights: what a GEMV's time should shrink with.
WEIGHT_BITS = {
    variant: BLOCK_BITS.get(variant, 8.0 * np.dtype(types[1]).itemsize)
    for variant, types in VARIANT_TYPES.items()
    if types[1]
}
#: What every side-by-side ratio of the sweep holds qbench's ``variant`` to, as ``"matmul variant / against"``
#: (the naming of :class:`qbench.cases.Comparison`):
#: another implementation and variant (``"numpy float32"``), the read ceiling in weight bytes per second
#: (a GEMV), the same kernel's in-cache rate in operations per second (a GEMM), or the input's quantization.
COMPARISONS = (
    "matmul static / numpy float32",
    "matmul dynamic / numpy float32",
    "matmul static / qbench float32",
    "matmul float32 / numpy float32",
    "matmul static / onnxruntime static",
    "matmul static / torch static",
    "matmul dynamic / onnxruntime dynamic",
    "matmul dynamic / torch dynamic",
    "matmul integer / onnxruntime integer",
    "matmul integer_kn / qbench integer",
    "matmul static / read",
    "matmul dynamic / read",
    "matmul static / peak",
    "matmul float32 / peak",
    "matmul dynamic / qbench quantize_x",
    "matmul Q4_0 / numpy float32",
    "matmul Q8_0 / numpy float32",
    "matmul nbits4 / numpy float32",
    "matmul nbits8 / numpy float32",
    "matmul Q4_0 / read",
    "matmul Q8_0 / read",
    "matmul nbits4 / read",
    "matmul Q4_0 / onnxruntime nbits4",
    "matmul Q8_0 / onnxruntime nbits8",
    "matmul nbits4 / onnxruntime nbits4",
    "matmul nbits8 / onnxruntime nbits8",
    "matmul int4_b32 / numpy float32",
    "matmul int4_b128 / numpy float32",
    "matmul int4_b32 / read",
    "matmul int4_b32 / onnxruntime int4_b32",
    "matmul int4_b128 / onnxruntime int4_b128",
    "matmul Q4_0 / onnxruntime int4_b32",
    "matmul int8_b32 / numpy float32",
    "matmul int8_b32 / onnxruntime int8_b32",
    "matmul Q8_0 / onnxruntime int8_b32",
)
#: Accuracy of the layer's output against float32: static with each calibration method, and dynamic.
ACCURACY_METHODS = ("minmax", "percentile", "entropy", "mse", "dynamic")
ACTIVATIONS = ("normal", "outliers")
ACCURACY_SHAPE = "64x1024x256"
#: The peak probe of a GEMM: the kernel's inner loop (one dot of K = PEAK_K) on an L1-resident pair, repeated
#: PEAK_REPS times in one call: the operations per second its arithmetic and loads allow, no memory beyond L1.
PEAK_K, PEAK_REPS = 2048, 4096
#: The packed kernel's peak probe: one tile over PEAK_GROUPS groups of K of one panel (under 20 KiB), PEAK_TILES
#: times in one call.
PEAK_GROUPS, PEAK_TILES = 64, 4096


def layer_shapes() -> tuple[str, ...]:
    """Shapes to sweep: ``QBENCH_SHAPES`` if set, else the grid of the mode."""
    return layer_shapes_override() or (SHAPES_QUICK if quick() else SHAPES_FULL)


def layer_threads() -> tuple[int, ...]:
    """Thread counts of the matmul sweep: 1 in the quick grid (its targets are single-threaded), else the grid's."""
    return quick_threads()


def dims(shape: str | Shape) -> tuple[int, int, int]:
    """(M, K, N) of ``"MxKxN"`` or of a mapping with a ``shape`` entry."""
    text = shape["shape"] if not isinstance(shape, str) else shape
    try:
        m, k, n = (int(v) for v in str(text).split("x"))
    except ValueError:
        raise ValueError(f"a matmul shape is 'MxKxN' (like '1x4096x4096'); got {text!r}") from None
    return m, k, n


def ops(shape: str | Shape) -> int:
    """Arithmetic operations of one call: a multiply and an add per weight per row."""
    m, k, n = dims(shape)
    return 2 * m * k * n


def weight_bytes(variant: str, shape: str | Shape) -> int:
    """Bytes of weights one call reads, scales included: what a GEMV is judged by against the read ceiling."""
    _, k, n = dims(shape)
    return round(k * n * WEIGHT_BITS[variant] / 8) if variant in WEIGHT_BITS else 0


def peak_call(variant: str, buf: Buffers) -> tuple[Callable[[], Any], int]:
    """(call, operations) of the peak probe for ``variant``: the packed micro-kernel's tile on one L1-resident
    panel, as ``matmul_integer`` runs packed weights, or float32 against float32 (the float twin)."""
    from qbench.kernels import matmul as kernels

    if VARIANT_TYPES[variant][1] != "float32":
        try:
            from qbench.kernels import gemm, isa
        except ImportError:  # an older commit, from before qbench packed its weights
            isa = None
        path = isa and isa.choose()
        if path is not None:
            rows, groups, nr = gemm.TILES[path.name][0], PEAK_GROUPS, gemm.panel_columns(path)
            a = buf.random("uint8", rows * groups * 4, 0).reshape(rows, -1)
            b, c = buf.random("uint8", groups * nr * 4, 1), np.zeros((rows, nr), np.int32)
            if not path.vnni:  # int16 pairs: values of (x - zero point) of 8-bit data
                a, b = (a.view(np.int16) >> 7).copy(), (b.view(np.int16) >> 7).copy()
            peak = gemm.peak_kernel(path)
            return (
                lambda: peak(a, groups * 4, b, groups, c, PEAK_TILES)
            ), 2 * rows * nr * groups * path.k_step * PEAK_TILES
    if VARIANT_TYPES[variant][1] == "float32":
        a, b, zeros = buf.random("float32", PEAK_K, 0), buf.random("float32", PEAK_K, 1), (np.float32(0),) * 2
    else:
        a = buf.random("int16", PEAK_K, 0) >> 7  # the range of widened 8-bit activations
        b, zeros = buf.random("int8", PEAK_K, 1), (np.int16(0), np.int32(0))
    return (lambda: kernels.dot_peak(a, b, *zeros, PEAK_REPS)), 2 * PEAK_K * PEAK_REPS


def _operands(variant: str, shape: Shape) -> tuple[Operand, ...]:
    m, k, n = dims(shape)
    x, w, y = VARIANT_TYPES[variant]
    if w is None:
        return Operand(x, READ, m * k), Operand(y, WRITE, m * k)
    weights = weight_bytes(variant, shape) // np.dtype(w).itemsize
    return Operand(x, READ, m * k), Operand(w, READ, weights), Operand(y, WRITE, m * n)


def _data(variant: str, shape: Shape, buf: Buffers) -> SimpleNamespace:
    """Activations (standard normal) and weights (N, K) like a trained layer's, quantized as each variant needs.

    Weights are int8 per output channel, symmetric; static activations use
    MinMax parameters calibrated on the activations, and the output's on the
    float layer's output of the first rows. ``b`` is the weights as ONNX's
    (K, N), a transposed view: rows of K in memory, as every library keeps them.
    """
    m, k, n = dims(shape)
    d = SimpleNamespace(variant=variant, m=m, k=k, n=n)
    d.x = buf.random("float32", (m, k), 0)
    if variant == "quantize_x":
        return d
    d.w = buf.random("float32", (n, k), 1)
    d.w *= np.float32(1 / np.sqrt(k))  # outputs of the order of the inputs
    d.bias = np.linspace(-0.5, 0.5, n, dtype=np.float32)
    if variant in BLOCK_BITS:
        return block_data(d)
    if variant == "float32":
        d.out = buf.empty((m, n), np.float32, 2)
        return d
    pw = calibrate(d.w, "int8", axis=0, symmetric=True)
    d.qw = buf.empty((n, k), np.int8, 2)
    d.qw[...] = reference.quantize(d.w, pw)
    d.b = d.qw.T
    if variant == "integer_kn":
        d.b = np.ascontiguousarray(d.qw.T)  # as an ONNX initializer lies: C-ordered (K, N)
    d.pb = QuantParams(pw.scale, pw.zero_point, np.int8, axis=1)
    d.pa = calibrate(d.x, "uint8")
    d.qa = reference.quantize(d.x, d.pa)
    head = d.x[:CHECK_ROWS].astype(np.float64) @ d.w.T.astype(np.float64)
    d.py = calibrate(head.astype(np.float32), "uint8")
    d.out = buf.empty((m, n), np.dtype(VARIANT_TYPES[variant][2]), 3)
    return d


def _qbench(d: Any, threads: int, parallel: bool | None) -> Callable[[], Any]:
    if d.variant in BLOCK_BITS:
        return qbench_block(d, parallel)
    try:
        from qbench.ops import matmul as mm
    except ImportError:  # an older commit, from before qbench had a matrix multiply
        raise NotImplementedError("this qbench version has no matrix multiply") from None

    if d.variant == "integer_kn" and not hasattr(mm, "pack_weights"):
        raise NotImplementedError("this qbench version has no packed weights to compare its unpacked product with")
    # Weights packed once, outside the timed call, as every peer packs its constant weights.
    w = mm.pack_weights(d.b, d.pb.zero_point) if hasattr(mm, "pack_weights") and "b" in vars(d) else vars(d).get("b")
    calls = {
        "float32": lambda: mm.matmul_float32(d.x, d.w.T, parallel=parallel),
        "static": lambda: mm.qlinear_matmul(d.qa, d.pa, w, d.pb, d.py, parallel=parallel),
        "dynamic": lambda: mm.dynamic_quantize_matmul(d.x, w, d.pb, d.bias, parallel=parallel),
        "integer": lambda: mm.matmul_integer(d.qa, w, d.pa.zero_point, parallel=parallel),
        "integer_kn": lambda: mm.matmul_integer(d.qa, d.b, d.pa.zero_point, 0, parallel=parallel),
        "quantize_x": lambda: mm.dynamic_quantize_linear(d.x, parallel=parallel),
    }
    return calls[d.variant]


def _numpy(d: Any, threads: int, parallel: bool | None) -> Callable[[], Any]:
    """NumPy's float32 layer: its BLAS (which the harness holds to the thread budget)."""
    if d.variant == "quantize_x":
        if threads > 1:
            raise NotImplementedError("NumPy's dynamic quantization runs single-threaded")
        return lambda: reference.dynamic_quantize_linear(d.x)
    if d.variant != "float32":
        raise NotImplementedError("NumPy has no 8-bit matrix multiply; its float32 BLAS is the baseline")
    return lambda: np.matmul(d.x, d.w.T, out=d.out)


def _peer(name: str) -> Callable[[Any, int, bool | None], Callable[[], Any]]:
    def build(d: Any, threads: int, parallel: bool | None) -> Callable[[], Any]:
        peers = peers_module()
        if not hasattr(peers, f"{name}_linear"):
            raise NotImplementedError(f"this qbench version has no {name} linear layer")
        if d.variant in ("quantize_x", "integer_kn"):
            raise NotImplementedError(f"{d.variant} is timed for qbench (and NumPy) only")
        if d.variant in ("Q8_0", "Q4_0"):
            raise NotImplementedError(f"{name} does not run ggml's formats; it is compared with the same bits")
        if d.variant in BLOCK_BITS and name != "onnxruntime":
            raise NotImplementedError(f"{name} has no MatMulNBits")
        return getattr(peers, f"{name}_linear")(d, threads)

    return build


def _check(d: Any, impl: str, result: Any) -> None:
    """The first rows of an answer against the reference: exact for qbench's and ONNX Runtime's integer paths
    (both follow ONNX bit for bit), within a float32 dot's error bound for float32, and within one step (static)
    or a 25 dB SQNR (dynamic) for PyTorch, which quantizes its own way."""
    if impl == "numpy" and d.variant != "float32":
        return
    if d.variant in BLOCK_BITS:
        check_block(d, impl, peers_module().to_numpy(result))
        return
    if d.variant == "quantize_x":
        q, p = result
        want_q, want_p = reference.dynamic_quantize_linear(d.x)
        if not (p == want_p and np.array_equal(q, want_q)):
            raise AssertionError("dynamic_quantize_linear disagrees with the ONNX definition; not timing it")
        return
    got = peers_module().to_numpy(result)[:CHECK_ROWS].astype(np.float64)
    rows = slice(0, CHECK_ROWS)
    if d.variant == "float32":
        exact = d.x[rows].astype(np.float64) @ d.w.T.astype(np.float64)
        # A float32 dot of K terms, in any order: |error| <= gamma_K * sum|x w|, gamma_K = K u / (1 - K u).
        u = 2.0**-24
        bound = d.k * u / (1 - d.k * u) * (np.abs(d.x[rows]).astype(np.float64) @ np.abs(d.w.T).astype(np.float64))
        if not np.all(np.abs(got - exact) <= bound * 1.0001 + 1e-30):
            raise AssertionError(f"{impl} float32 layer is off the float64 answer by more than a float32 dot can be")
        return
    if d.variant == "dynamic":
        q, pa = reference.dynamic_quantize_linear(d.x)
        acc = reference.matmul_integer(q[rows], d.b, pa.zero_point, 0).astype(np.float32)
        want = (acc * (np.float32(pa.scale) * d.pb.scale) + d.bias).astype(np.float64)
    elif d.variant == "static":
        want = reference.qlinear_matmul(d.qa[rows], d.pa, d.b, d.pb, d.py).astype(np.float64)
    else:
        want = reference.matmul_integer(d.qa[rows], d.b, d.pa.zero_point, 0).astype(np.float64)
    if impl != "torch":
        if not np.array_equal(got, want):
            raise AssertionError(f"{impl} {d.variant} layer disagrees with the ONNX definition; not timing it")
    elif d.variant == "static":
        if np.abs(got - want).max() > 1:
            raise AssertionError("torch static layer is more than one step off the ONNX definition")
    else:
        noise = np.sum((got - want) ** 2)
        if noise > 10**-2.5 * np.sum(want**2):
            raise AssertionError("torch dynamic layer is below 25 dB SQNR against the ONNX definition")


MATMUL = Family(
    name="matmul",
    summary="linear layer y = x @ W.T: float32, and int8 static, dynamic and raw integer",
    dtypes=VARIANTS,
    quick_dtypes=tuple(v for v in VARIANTS if v not in INT8_NBITS),
    operands=_operands,
    data=_data,
    impls={"qbench": _qbench, "numpy": _numpy, "onnxruntime": _peer("onnxruntime"), "torch": _peer("torch")},
    check=_check,
    ceiling="read",
    axes=("shape",),
    axis_values={"shape": layer_shapes},
    threads=layer_threads,
    numpy_threads=True,
)
