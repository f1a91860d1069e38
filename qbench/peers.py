"""The libraries people use for the same job, wrapped as ready-to-time calls: ONNX Runtime and PyTorch.

Both are optional (``pip install -e ".[peers]"``; the list of them is ``qbench.cases.PEER_IMPLS``); without them these
functions raise :class:`PeerUnavailable`, which the suite turns into a skip.
Each returns a zero-argument callable that does the whole operation, output
included, the way a user of that library would write it.

PyTorch quantizes as ``round(x * (1 / scale) + zero_point)``, so at exact ties
it can differ from ONNX (and qbench) by one step; peers are compared for speed.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from qbench.ops.params import QuantParams


class PeerUnavailable(NotImplementedError):
    """The peer library is not installed, or cannot do this case."""


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise PeerUnavailable(f'{name} is not installed (pip install -e ".[peers]")') from exc


# ---- ONNX Runtime -------------------------------------------------------------------------------

_ONNX_TYPES = {"uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "float32": 1}  # TensorProto types


def ort_node_session(
    op: str,
    inputs: list[str],
    feeds: dict[str, np.ndarray],
    constants: dict[str, np.ndarray],
    out: np.ndarray,
    threads: int,
    *,
    domain: str = "",
    attrs: dict[str, Any] | None = None,
) -> Any:
    """A one-node ONNX Runtime session: ``op`` over ``inputs`` (fed at run time or constant initializers, as
    ONNX Runtime prepacks constant weights for its users) writing output ``y`` shaped like ``out``."""
    _import("onnx")  # the model is built with onnx.helper
    ort = _import("onnxruntime")
    from onnx import helper, numpy_helper

    node = helper.make_node(op, inputs, ["y"], domain=domain or None, **(attrs or {}))
    graph = helper.make_graph(
        [node],
        op,
        [helper.make_tensor_value_info(k, _ONNX_TYPES[v.dtype.name], list(v.shape)) for k, v in feeds.items()],
        [helper.make_tensor_value_info("y", _ONNX_TYPES[out.dtype.name], list(out.shape))],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in constants.items()],
    )
    opsets = [helper.make_opsetid("", 21)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = min(model.ir_version, 10)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads > 1:
        # Its idle workers sleep instead of spinning: timed in turns with other implementations (and with other
        # sessions, one per copy of the weights), spinning workers take the cores of whatever runs next
        # (docs/peers.md has the measurement).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # e.g. an older runtime without 16-bit QuantizeLinear
        raise PeerUnavailable(f"onnxruntime {ort.__version__} cannot run {op} on these types: {exc}") from exc


def ort_bound(session: Any, feeds: dict[str, np.ndarray], out: np.ndarray) -> Callable[[], np.ndarray]:
    """IO binding into a preallocated output, so the timing is the kernel, not allocation."""
    binding = session.io_binding()
    for name, value in feeds.items():
        binding.bind_cpu_input(name, value)
    binding.bind_output("y", "cpu", 0, out.dtype, list(out.shape), out.ctypes.data)

    def run() -> np.ndarray:
        session.run_with_iobinding(binding)
        return out

    return run


def _ort_conversion(op: str, src: np.ndarray, params: QuantParams, out: np.ndarray, threads: int) -> Callable:
    """A QuantizeLinear / DequantizeLinear call with the parameters as initializers."""
    constants = {
        "scale": np.asarray(params.scale, np.float32),
        "zero_point": np.asarray(params.zero_point).astype(params.dtype),
    }
    attrs = {} if params.axis is None else {"axis": params.axis}
    session = ort_node_session(op, ["x", "scale", "zero_point"], {"x": src}, constants, out, threads, attrs=attrs)
    return ort_bound(session, {"x": src}, out)


def onnxruntime_quantize(x: np.ndarray, params: QuantParams, out: np.ndarray, threads: int) -> Callable[[], Any]:
    return _ort_conversion("QuantizeLinear", x, params, out, threads)


def onnxruntime_dequantize(q: np.ndarray, params: QuantParams, out: np.ndarray, threads: int) -> Callable[[], Any]:
    return _ort_conversion("DequantizeLinear", q, params, out, threads)


# ---- PyTorch ------------------------------------------------------------------------------------


def _torch(threads: int) -> Any:
    torch = _import("torch")
    torch.set_num_threads(threads)
    # Recent releases deprecate quantized tensors; they are still what PyTorch users call today.
    warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*deprecated")
    return torch


def _torch_qtype(torch: Any, params: QuantParams) -> Any:
    qtypes = {"uint8": torch.quint8, "int8": torch.qint8}
    if params.dtype.name not in qtypes:
        raise PeerUnavailable(f"PyTorch has no {params.dtype.name} quantized tensor (only uint8, int8)")
    return qtypes[params.dtype.name]


def torch_quantize(x: np.ndarray, params: QuantParams, threads: int) -> Callable[[], Any]:
    torch = _torch(threads)
    qtype = _torch_qtype(torch, params)
    t = torch.from_numpy(x)
    if params.axis is None:
        scale, zp = float(params.scale), int(params.zero_point)
        return lambda: torch.quantize_per_tensor(t, scale, zp, qtype)
    scales = torch.from_numpy(params.scale.astype(np.float64))
    zps = torch.from_numpy(params.zero_point.astype(np.int64))
    return lambda: torch.quantize_per_channel(t, scales, zps, params.axis, qtype)


def torch_dequantize(q: np.ndarray, params: QuantParams, threads: int) -> Callable[[], Any]:
    """``dequantize`` of a PyTorch quantized tensor holding the integers ``q``, so every implementation
    dequantizes the same data."""
    torch = _torch(threads)
    _torch_qtype(torch, params)
    ints = torch.from_numpy(q)
    if params.axis is None:
        quantized = torch._make_per_tensor_quantized_tensor(ints, float(params.scale), int(params.zero_point))
    else:
        scales = torch.from_numpy(params.scale.astype(np.float64))
        zps = torch.from_numpy(params.zero_point.astype(np.int64))
        quantized = torch._make_per_channel_quantized_tensor(ints, scales, zps, params.axis)
    return quantized.dequantize


def to_numpy(result: Any) -> np.ndarray:
    """A peer's result as NumPy (PyTorch quantized tensors as their integer representation)."""
    if getattr(result, "is_quantized", False):
        return result.int_repr().numpy()
    if hasattr(result, "numpy"):
        return result.numpy()
    return np.asarray(result)


# ---- linear layers (the matmul family's data: see qbench.cases.matmul) --------------------------


def onnxruntime_linear(d: Any, threads: int) -> Callable[[], np.ndarray]:
    """The layer as an ONNX Runtime user deploys it: weights, scales and zero points as initializers
    (which ONNX Runtime prepacks once), activations fed at run time, output into ``d.out``."""
    if d.variant in ("nbits4", "nbits8", "int4_b32", "int4_b128", "int8_b32"):
        level = 0 if d.variant.startswith("nbits") else 4  # float activations, or int8 ones (its fast path)
        return onnxruntime_matmul_nbits(d.x, d.packed, d.scales, None, d.bits, d.block, d.out, threads, level)
    zb = np.zeros(d.n, np.int8)
    if d.variant == "float32":
        op, names, feeds, constants, domain = "MatMul", ["x", "w"], {"x": d.x}, {"w": d.w.T}, ""
    elif d.variant == "dynamic":
        names = ["x", "b", "sb", "zb", "bias"]
        constants = {"b": d.b, "sb": d.pb.scale, "zb": zb, "bias": d.bias}
        op, feeds, domain = "DynamicQuantizeMatMul", {"x": d.x}, "com.microsoft"
    elif d.variant == "static":
        names = ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"]
        constants = {
            "sa": np.float32(d.pa.scale),
            "za": np.uint8(d.pa.zero_point),
            "b": d.b,
            "sb": d.pb.scale,
            "zb": zb,
            "sy": np.float32(d.py.scale),
            "zy": np.uint8(d.py.zero_point),
        }
        op, feeds, domain = "QLinearMatMul", {"a": d.qa}, ""
    else:
        op, names, feeds, domain = "MatMulInteger", ["a", "b", "za"], {"a": d.qa}, ""
        constants = {"b": d.b, "za": np.uint8(d.pa.zero_point)}
    constants = {k: np.ascontiguousarray(v) for k, v in constants.items()}
    session = ort_node_session(op, names, feeds, constants, d.out, threads, domain=domain)
    return ort_bound(session, feeds, d.out)


def torch_linear(d: Any, threads: int) -> Callable[[], Any]:
    """The layer as a PyTorch user runs it: ``linear`` in float32, or the fbgemm quantized kernels with
    weights prepacked once (``quantized::linear_dynamic``, ``quantized::linear``)."""
    torch = _torch(threads)
    x = torch.from_numpy(d.x)
    if d.variant == "float32":
        w = torch.from_numpy(d.w)
        return lambda: torch.nn.functional.linear(x, w)
    if d.variant == "integer":
        raise PeerUnavailable("PyTorch has no CPU int8 matmul with an int32 output for uint8 activations")
    scales = torch.from_numpy(d.pb.scale.astype(np.float64))
    zero = torch.zeros(d.n, dtype=torch.int64)
    qw = torch._make_per_channel_quantized_tensor(torch.from_numpy(np.ascontiguousarray(d.qw)), scales, zero, 0)
    if d.variant == "dynamic":
        packed = torch.ops.quantized.linear_prepack(qw, torch.from_numpy(d.bias))
        return lambda: torch.ops.quantized.linear_dynamic(x, packed)
    packed = torch.ops.quantized.linear_prepack(qw, None)
    qa = torch._make_per_tensor_quantized_tensor(torch.from_numpy(d.qa), float(d.pa.scale), int(d.pa.zero_point))
    scale, zp = float(d.py.scale), int(d.py.zero_point)
    return lambda: torch.ops.quantized.linear(qa, packed, scale, zp)


def onnxruntime_matmul_nbits(
    a: np.ndarray,
    b: np.ndarray,
    scales: np.ndarray,
    zero_points: np.ndarray | None,
    bits: int,
    block_size: int,
    out: np.ndarray,
    threads: int,
    accuracy_level: int = 0,
) -> Callable[[], np.ndarray]:
    """ONNX Runtime's ``MatMulNBits`` (com.microsoft) as its users deploy it: packed weights, scales and zero
    points as initializers, ``a`` (M, K) fed at run time; ``accuracy_level`` 0 multiplies in float, 4 quantizes
    ``a`` to int8 per block and multiplies integers (its fast path)."""
    n, k = out.shape[-1], a.shape[-1]
    constants = {"b": b, "scales": scales.reshape(-1)}
    names = ["a", "b", "scales"]
    if zero_points is not None:
        constants["zero_points"] = zero_points.reshape(-1)
        names.append("zero_points")
    attrs = {"K": k, "N": n, "bits": bits, "block_size": block_size, "accuracy_level": accuracy_level}
    constants = {key: np.ascontiguousarray(v) for key, v in constants.items()}
    session = ort_node_session(
        "MatMulNBits", names, {"a": a}, constants, out, threads, domain="com.microsoft", attrs=attrs
    )
    return ort_bound(session, {"a": a}, out)
