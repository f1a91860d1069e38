"""The kernel families of the suite, each declared once: arrays, data, implementations, check.

Adding a family is one entry in :data:`KERNELS` (with its data, builders and
check written beside it), next to its kernel module and its NumPy reference.

This package is also loaded from a benchmark tree's own checkout to measure
older installed commits (see ``benchmarks/benchmarks/_common.py``): sibling
modules are imported relatively (from the tree), the library absolutely
(the commit measured), and a library feature an older commit lacks is
skipped with ``NotImplementedError``, never failed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

from qbench import ops, reference
from qbench.ops.calibrate import calibrate
from qbench.ops.params import QuantParams

from .blocks import BLOCK_CONVERSIONS
from .grid import IMPLS, WITH_PEERS
from .registry import READ, UPDATE, WRITE, Buffers, Family, Operand, Shape, Stream, elementwise, peers_module

CHECK = 1 << 16  # elements compared at each end of an elementwise output
AXIS_CHANNELS = 64  # channels of the per-axis conversions (axis 0)


def acc_pair(dtype: str) -> tuple[str, str]:
    """``"float32+=uint8"`` -> ("float32", "uint8"): the accumulator and the added array."""
    acc, x = dtype.split("+=")
    return acc, x


# ---- quantize / dequantize, per tensor and per channel -------------------------------------------


def _conversion_data(kernel: str) -> Callable[[str, Shape, Buffers], Any]:
    """Data of a conversion: float32 input, parameters calibrated on it, the output preallocated."""
    per_axis = kernel.endswith("_axis")
    to_q = kernel.startswith("quantize")

    def make(dtype: str, shape: Shape, buf: Buffers) -> SimpleNamespace:
        n = shape["size"]
        dims = (AXIS_CHANNELS, n // AXIS_CHANNELS) if per_axis else (n,)
        x = buf.random("float32", dims, 0)
        p = calibrate(x[:, :4096] if per_axis else x[:CHECK], dtype, axis=0 if per_axis else None)
        if to_q:
            d = SimpleNamespace(x=x, p=p, dims=dims, out=buf.empty(dims, p.dtype, 1))
            d.want = lambda part: reference.quantize(x.reshape(-1)[part], _flat_params(p, dims, part))
            return d
        q = buf.empty(dims, p.dtype, 0)
        q[...] = reference.quantize(x, p)
        d = SimpleNamespace(q=q, p=p, dims=dims, out=buf.empty(dims, np.float32, 1))
        d.want = lambda part: reference.dequantize(q.reshape(-1)[part], _flat_params(p, dims, part))
        return d

    return make


def _flat_params(p: QuantParams, dims: tuple[int, ...], part: slice) -> QuantParams:
    """Parameters for a flat slice of an array of ``dims``: per-axis expands to one scale per element."""
    if p.axis is None:
        return p
    channel = np.arange(int(np.prod(dims)))[part] // dims[1]
    return QuantParams(p.scale[channel], p.zero_point[channel], p.dtype, axis=0)


QUANTIZE: dict[str, Callable] = {
    "qbench": lambda d, threads, parallel: lambda: ops.quantize(d.x, d.p, out=d.out, parallel=parallel),
    "numpy": lambda d, threads, parallel: lambda: reference.quantize(d.x, d.p),
    "onnxruntime": lambda d, threads, parallel: peers_module().onnxruntime_quantize(d.x, d.p, d.out, threads),
    "torch": lambda d, threads, parallel: peers_module().torch_quantize(d.x, d.p, threads),
}
DEQUANTIZE: dict[str, Callable] = {
    "qbench": lambda d, threads, parallel: lambda: ops.dequantize(d.q, d.p, out=d.out, parallel=parallel),
    "numpy": lambda d, threads, parallel: lambda: reference.dequantize(d.q, d.p),
    "onnxruntime": lambda d, threads, parallel: peers_module().onnxruntime_dequantize(d.q, d.p, d.out, threads),
    "torch": lambda d, threads, parallel: peers_module().torch_dequantize(d.q, d.p, threads),
}


def _check_conversion(d: Any, impl: str, result: Any) -> None:
    """Both ends of the output bit for bit against the reference; PyTorch, which rounds its own way, close to it."""
    if impl == "numpy":
        return
    flat = (np.asarray(result) if impl == "qbench" else peers_module().to_numpy(result)).reshape(-1)
    if impl == "torch":
        _check_close(flat, d.want, impl)
        return
    for part in (slice(0, CHECK), slice(max(0, flat.size - CHECK), flat.size)):
        want = np.ascontiguousarray(d.want(part).reshape(-1))
        if not np.array_equal(flat[part].view(np.uint8), want.view(np.uint8)):
            raise AssertionError(f"{impl} disagrees with the NumPy reference; not timing a wrong kernel")


def _check_close(flat: np.ndarray, want_fn: Callable[[slice], np.ndarray], impl: str) -> None:
    """Close to the ONNX reference: integers within one step, differing almost nowhere (ties); floats within
    a few units in the last place of the data's magnitude."""
    part = slice(0, min(CHECK, flat.size))
    want = want_fn(part).reshape(-1)
    if flat.dtype.kind == "f":
        # Near zero, q * scale - zero_point * scale (PyTorch's vector form) loses relative precision.
        ok = np.allclose(flat[part], want, rtol=2.0**-21, atol=float(np.abs(want).max(initial=0)) * 2.0**-20)
    else:
        diff = np.abs(flat[part].astype(np.int64) - want.astype(np.int64))
        ok = diff.max(initial=0) <= 1 and np.count_nonzero(diff) <= max(1, diff.size // 1000)
    if not ok:
        raise AssertionError(f"{impl} differs from the ONNX reference beyond its own rounding")


def _conversion_allocates(d: Any, impl: str) -> int:
    return 0 if impl in ("qbench", "onnxruntime") else d.out.nbytes


def _conversion(name: str, dtypes: tuple, quick_dtypes: tuple, streams: Callable, summary: str) -> Family:
    return Family(
        name=name,
        summary=summary,
        dtypes=dtypes,
        quick_dtypes=quick_dtypes,
        operands=elementwise(streams),
        data=_conversion_data(name),
        impls=QUANTIZE if name.startswith("quantize") else DEQUANTIZE,
        check=_check_conversion,
        allocates=_conversion_allocates,
    )


def _quantize_streams(dtype: str) -> tuple[Stream, ...]:
    return (("float32", READ), (dtype, WRITE))


def _dequantize_streams(dtype: str) -> tuple[Stream, ...]:
    return ((dtype, READ), ("float32", WRITE))


# ---- sums, dot products, acc += x -----------------------------------------------------------------


def _exact_integer(fn_name: str) -> Callable[[Any, str, Any], None]:
    """Integer results equal the reference's exactly (floats are held to their error bound by the tests)."""

    def check(d: Any, impl: str, result: Any) -> None:
        if impl == "qbench" and d.a.dtype.kind in "iu":
            want = getattr(reference, fn_name)(*d.args)
            if int(result) != int(want):
                raise AssertionError(f"{fn_name}: qbench gives {int(result)}, the NumPy reference {int(want)}")

    return check


def _sum_data(dtype: str, shape: Shape, buf: Buffers) -> SimpleNamespace:
    a = buf.random(dtype, shape["size"], 0)
    return SimpleNamespace(a=a, args=(a,))


def _dot_data(dtype: str, shape: Shape, buf: Buffers) -> SimpleNamespace:
    a, b = buf.random(dtype, shape["size"], 0), buf.random(dtype, shape["size"], 1)
    return SimpleNamespace(a=a, b=b, args=(a, b))


def _accumulate_data(dtype: str, shape: Shape, buf: Buffers) -> SimpleNamespace:
    acc_t, x_t = acc_pair(dtype)
    acc, x = buf.random(acc_t, shape["size"], 0), buf.random(x_t, shape["size"], 1)
    # Both ends before any call: the check replays one call on them with the reference.
    return SimpleNamespace(acc=acc, x=x, head=acc[:CHECK].copy(), tail=acc[-CHECK:].copy())


def _check_accumulate(d: Any, impl: str, result: Any) -> None:
    """After one call, both ends of acc equal one reference ``acc += x`` on their saved values."""
    if impl != "qbench":
        return
    head, tail = d.head.copy(), d.tail.copy()
    reference.accumulate(head, d.x[:CHECK])
    reference.accumulate(tail, d.x[-CHECK:])
    if not (np.array_equal(d.acc[:CHECK], head) and np.array_equal(d.acc[-CHECK:], tail)):
        raise AssertionError("accumulate: qbench disagrees with the NumPy reference")


def _qdot_data(dtype: str, shape: Shape, buf: Buffers) -> SimpleNamespace:
    xa, xb = buf.random("float32", shape["size"], 0), buf.random("float32", shape["size"], 1)
    pa, pb = calibrate(xa[:CHECK], dtype), calibrate(xb[:CHECK], dtype)
    qa, qb = buf.empty(xa.shape, pa.dtype, 0), buf.empty(xb.shape, pb.dtype, 1)
    qa[...], qb[...] = reference.quantize(xa, pa), reference.quantize(xb, pb)
    return SimpleNamespace(qa=qa, pa=pa, qb=qb, pb=pb)


def _check_qdot(d: Any, impl: str, result: Any) -> None:
    """qbench's qdot of the first values against the float64 dot of their dequantized float32 values.

    Each dequantized value carries one float32 rounding (relative 2**-24), so
    each product of two is off by at most about 2**-23 of itself, and the
    reference's float64 sum adds ``n * 2**-53``: the bound, times ``sum(|a b|)``.
    """
    if impl != "qbench":
        return
    part = slice(0, CHECK)
    qa, qb = d.qa[part], d.qb[part]
    got = ops.qdot(qa, d.pa, qb, d.pb)
    a, b = reference.dequantize(qa, d.pa).astype(np.float64), reference.dequantize(qb, d.pb).astype(np.float64)
    bound = (2.0**-22 + qa.size * 2.0**-52) * float(np.abs(a * b).sum())
    if not math.isclose(got, float(np.dot(a, b)), rel_tol=0.0, abs_tol=bound):
        raise AssertionError(f"qdot: qbench gives {got}, the reference {float(np.dot(a, b))} (bound {bound:.3g})")


def _accumulate_streams(dtype: str) -> tuple[Stream, ...]:
    acc, x = acc_pair(dtype)
    return ((acc, UPDATE), (x, READ))


#: Every timed kernel. ``dtype`` is the quantized type for (de)quantize and
#: qdot, the input type for sum and dot, and ``acc+=x`` for accumulate.
KERNELS: dict[str, Family] = {
    family.name: family
    for family in (
        _conversion(
            "quantize",
            ("uint8", "int8", "uint16", "int16"),
            ("uint8", "int8"),
            _quantize_streams,
            "float32 -> q, per tensor",
        ),
        _conversion(
            "quantize_axis",
            ("uint8", "int8"),
            ("uint8",),
            _quantize_streams,
            f"float32 -> q, per channel ({AXIS_CHANNELS} channels on axis 0)",
        ),
        _conversion(
            "dequantize",
            ("uint8", "int8", "uint16", "int16"),
            ("uint8", "int8"),
            _dequantize_streams,
            "q -> float32, per tensor",
        ),
        _conversion(
            "dequantize_axis",
            ("uint8", "int8"),
            ("uint8",),
            _dequantize_streams,
            f"q -> float32, per channel ({AXIS_CHANNELS} channels on axis 0)",
        ),
        Family(
            name="sum",
            summary="whole-array sum, widening accumulator",
            dtypes=("float32", "float64", "uint8", "int8", "uint16", "int16", "int32"),
            quick_dtypes=("float32", "uint8", "int8"),
            operands=elementwise(lambda d: ((d, READ),)),
            data=_sum_data,
            impls={
                "qbench": lambda d, threads, parallel: lambda: ops.sum(d.a, parallel=parallel),
                "numpy": lambda d, threads, parallel: lambda: reference.sum(d.a),
            },
            check=_exact_integer("sum"),
            ceiling="read",
        ),
        Family(
            name="accumulate",
            summary="acc += x in place",
            dtypes=(
                "float32+=float32",
                "float32+=uint8",
                "uint8+=uint8",
                "int32+=int8",
                "uint16+=uint8",
                "int32+=int32",
            ),
            quick_dtypes=("float32+=float32", "float32+=uint8", "uint8+=uint8"),
            operands=elementwise(_accumulate_streams),
            data=_accumulate_data,
            impls={
                "qbench": lambda d, threads, parallel: lambda: ops.accumulate(d.acc, d.x, parallel=parallel),
                "numpy": lambda d, threads, parallel: lambda: reference.accumulate(d.acc, d.x),
            },
            check=_check_accumulate,
            ceiling="update",
        ),
        Family(
            name="dot",
            summary="dot product of two vectors",
            dtypes=("float32", "float64", "int8", "uint8"),
            quick_dtypes=("float32", "int8"),
            operands=elementwise(lambda d: ((d, READ), (d, READ))),
            data=_dot_data,
            impls={
                "qbench": lambda d, threads, parallel: lambda: ops.dot(d.a, d.b, parallel=parallel),
                "numpy": lambda d, threads, parallel: lambda: reference.dot(d.a, d.b),
            },
            check=_exact_integer("dot"),
            ceiling="read",
        ),
        Family(
            name="qdot",
            summary="dot of two quantized vectors, returned as float",
            dtypes=("uint8", "int8"),
            quick_dtypes=("uint8",),
            operands=elementwise(lambda d: ((d, READ), (d, READ))),
            data=_qdot_data,
            impls={
                "qbench": lambda d, threads, parallel: lambda: ops.qdot(d.qa, d.pa, d.qb, d.pb, parallel=parallel),
                "numpy": lambda d, threads, parallel: lambda: reference.qdot(d.qa, d.pa, d.qb, d.pb),
            },
            check=_check_qdot,
            ceiling="read",
        ),
        *BLOCK_CONVERSIONS,
    )
}
assert all(tuple(f.impls)[: len(IMPLS)] == IMPLS and set(f.impls) <= set(WITH_PEERS) for f in KERNELS.values())


# ---- bandwidth probes -----------------------------------------------------------------------------

#: Memory-bandwidth probes on float32 arrays, and the arrays each touches.
BANDWIDTH_OPS: dict[str, tuple[Stream, ...]] = {
    "copy": (("float32", READ), ("float32", WRITE)),
    "read": (("float32", READ),),
    "write": (("float32", WRITE),),
}


def bandwidth_call(op: str, size: int, buf: Buffers) -> Callable[[bool], Callable[[], Any]]:
    """``call(parallel)`` of a float32 bandwidth probe (:data:`BANDWIDTH_OPS`) on ``size`` elements."""
    from qbench.kernels import bandwidth

    src, dst = buf.empty(size, np.float32, 0), buf.empty(size, np.float32, 1)
    src[...] = 1.0
    calls = {
        "copy": lambda p: lambda: bandwidth.copy(src, dst, parallel=p),
        "read": lambda p: lambda: bandwidth.read(src, parallel=p),
        "write": lambda p: lambda: bandwidth.write(dst, np.float32(1), parallel=p),
    }
    return calls[op]


def pattern_probe_call(operands: tuple[Operand, ...], update: bool, buf: Buffers) -> Callable[[bool], Any]:
    """``call(parallel)`` moving a kernel's two arrays (as unsigned ints) with no arithmetic.

    ``operands`` are the probe's (:func:`qbench.cases.probe_operands`): one read,
    one written or updated. A copy writes, an xor updates in place; random bits
    like the kernel's data, in the same page slots as the kernel's arrays.
    """
    from qbench.kernels import bandwidth

    src_op, dst_op = sorted(operands, key=lambda o: o.mode != READ)
    src = buf.random(src_op.dtype, src_op.elements, 0)
    dst = buf.random(dst_op.dtype, dst_op.elements, 1)
    if update:
        if not hasattr(bandwidth, "update"):  # the suite also measures older commits
            raise NotImplementedError("this qbench version has no update probe; its ceiling is not measured")
        return lambda p: lambda: bandwidth.update(dst, src, parallel=p)
    return lambda p: lambda: bandwidth.copy(src, dst, parallel=p)
