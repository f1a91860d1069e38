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

from qbench.params import QuantParams


class PeerUnavailable(NotImplementedError):
    """The peer library is not installed, or cannot do this case."""


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise PeerUnavailable(f'{name} is not installed (pip install -e ".[peers]")') from exc


# ---- ONNX Runtime -------------------------------------------------------------------------------

_ONNX_TYPES = {"uint8": 2, "int8": 3, "uint16": 4, "int16": 5}  # TensorProto element types


def _ort_session(op: str, params: QuantParams, shape: tuple[int, ...], threads: int) -> Any:
    """A one-node QuantizeLinear / DequantizeLinear model with the parameters as initializers."""
    _import("onnx")  # the model is built with onnx.helper
    ort = _import("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    qtype = _ONNX_TYPES[params.dtype.name]
    scale = np.asarray(params.scale, np.float32)
    zero_point = np.asarray(params.zero_point).astype(params.dtype)
    inits = [numpy_helper.from_array(scale, "scale"), numpy_helper.from_array(zero_point, "zero_point")]
    attrs = {} if params.axis is None else {"axis": params.axis}
    node = helper.make_node(op, ["x", "scale", "zero_point"], ["y"], **attrs)
    in_type, out_type = (TensorProto.FLOAT, qtype) if op == "QuantizeLinear" else (qtype, TensorProto.FLOAT)
    graph = helper.make_graph(
        [node],
        op,
        [helper.make_tensor_value_info("x", in_type, list(shape))],
        [helper.make_tensor_value_info("y", out_type, list(shape))],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = min(model.ir_version, 10)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # e.g. an older runtime without 16-bit QuantizeLinear
        raise PeerUnavailable(f"onnxruntime {ort.__version__} cannot run {op} to {params.dtype.name}: {exc}") from exc


def _ort_bound(session: Any, x: np.ndarray, out: np.ndarray) -> Callable[[], Any]:
    """IO binding into a preallocated output, so the timing is the kernel, not allocation."""
    binding = session.io_binding()
    binding.bind_cpu_input("x", x)
    binding.bind_output("y", "cpu", 0, out.dtype, list(out.shape), out.ctypes.data)

    def run() -> np.ndarray:
        session.run_with_iobinding(binding)
        return out

    return run


def onnxruntime_quantize(x: np.ndarray, params: QuantParams, out: np.ndarray, threads: int) -> Callable[[], Any]:
    return _ort_bound(_ort_session("QuantizeLinear", params, x.shape, threads), x, out)


def onnxruntime_dequantize(q: np.ndarray, params: QuantParams, out: np.ndarray, threads: int) -> Callable[[], Any]:
    return _ort_bound(_ort_session("DequantizeLinear", params, q.shape, threads), q, out)


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
