"""Weight tensors of a model file, one at a time: ONNX, safetensors, GGUF and NumPy ``.npz``.

Every reader lists a file's tensors first (name, shape, stored type, which
axis holds the output channels) and loads one on request as float32, so a
scan holds a few tensors at a time whatever the model's size. GGUF files are
memory-mapped (``gguf.GGUFReader``); ONNX initializers and ``Constant``
tensors (of the main graph and of every ``If``/``Loop``/``Scan`` body;
external data included), safetensors and ``.npz`` members are read one
tensor per call.

The output-channel axis, per file type:

- ONNX: from the node that consumes the initializer: ``MatMul`` input B
  (K, N): the last axis; ``Gemm`` B: 0 with ``transB=1``, else 1; ``Conv``
  weights (M, C, kh, kw): 0; ``ConvTranspose`` (C, M / group, ...): 1;
  anything else: 0.
- safetensors, GGUF, ``.npz``: 0 (PyTorch's ``Linear`` (out, in) and ``Conv``
  (out, in, ...); GGUF rows are output channels). Models that store (in, out),
  like GPT-2's ``Conv1D``, need ``channel_axis`` set by the caller.

Errors say which file and tensor, and what is accepted (:class:`ModelError`),
never a library's traceback.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Extension -> file type.
KINDS = {".onnx": "onnx", ".safetensors": "safetensors", ".gguf": "gguf", ".npz": "npz"}
#: Stored float types read as they are (anything else of GGUF is a quantized format, dequantized).
FLOAT_TYPES = ("float32", "float16", "bfloat16", "float64")
#: Matrix-multiply consumers of an ONNX weight and the axis of its output channels.
ONNX_CHANNEL_AXIS = {"MatMul": -1, "Conv": 0, "ConvTranspose": 1}
#: Name fragments of embedding tables (read by a gather, not a matrix product) in files that do not say.
EMBEDDING_NAMES = ("embed", "wte", "wpe", "token_embd", "tok_embeddings")


class ModelError(ValueError):
    """A model file that cannot be read, or holds nothing to quantize; the message names the file (and tensor)."""


@dataclass(frozen=True)
class TensorInfo:
    """One weight tensor as stored: enough to plan a scan without loading it."""

    name: str
    shape: tuple[int, ...]
    stored: str  # "float32", "float16", "bfloat16", or a GGUF type like "Q4_0"
    stored_bytes: int
    channel_axis: int
    index: int  # position in the file: the model's depth, as far as the file's order tells it
    matmul: bool  # feeds a matrix product (timed as one); False for embeddings, convolutions, unknowns

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def rows(self) -> int:
        """Output channels: the rows of the (channels, inputs) view every format quantizes."""
        return self.shape[self.channel_axis] if self.shape else 0

    @property
    def cols(self) -> int:
        return self.size // self.rows if self.rows else 0


@dataclass
class ModelFile:
    """A readable model: its tensors (two or more dimensions, float or GGUF-quantized) and their loader."""

    path: Path
    kind: str
    tensors: list[TensorInfo]
    others: int  # tensors of fewer dimensions (biases, norms): never quantized, counted in the totals
    other_values: int
    _load: Callable[[TensorInfo], np.ndarray]
    close: Callable[[], None] = lambda: None

    def load(self, info: TensorInfo) -> np.ndarray:
        """The tensor as float32 in its stored shape (GGUF-quantized ones dequantized)."""
        try:
            arr = self._load(info)
        except ModelError:
            raise
        except Exception as exc:  # a library's own error on a damaged tensor
            raise ModelError(f"{self.path}: cannot read tensor {info.name!r}: {exc}") from None
        if arr.shape != info.shape:
            raise ModelError(f"{self.path}: tensor {info.name!r} holds {arr.shape}, its header says {info.shape}")
        return np.asarray(arr, dtype=np.float32)

    def __enter__(self) -> ModelFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def rows_view(w: np.ndarray, axis: int) -> np.ndarray:
    """``w`` as a C-contiguous (channels, inputs) array: the channel axis first, the rest flattened."""
    moved = np.moveaxis(w, axis, 0)
    return np.ascontiguousarray(moved.reshape(moved.shape[0], -1))


def _needs(module: str, kind: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModelError(
            f"reading {kind} files needs the {module.split('.')[0]} package: pip install 'qbench[models]'"
        ) from None


def open_model(path: str | Path, channel_axis: int | None = None) -> ModelFile:
    """List the tensors of ``path`` (by extension); ``channel_axis`` overrides the per-file-type rule."""
    path = Path(path)
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise ModelError(
            f"{path}: unknown model format {path.suffix or '(no extension)'!r}; accepted: {', '.join(KINDS)}"
        )
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    import ml_dtypes  # noqa: F401  (registers bfloat16 with NumPy, as safetensors and GGUF need)

    reader = {"onnx": _onnx, "safetensors": _safetensors, "gguf": _gguf, "npz": _npz}[kind]
    model = reader(path)
    if channel_axis is not None:
        fixed = []
        for t in model.tensors:
            if not -len(t.shape) <= channel_axis < len(t.shape):
                raise ModelError(f"{path}: channel axis {channel_axis} is out of range for {t.name!r} {t.shape}")
            fixed.append(_with_axis(t, channel_axis % len(t.shape)))
        model.tensors = fixed
    if not model.tensors:
        model.close()
        raise ModelError(
            f"{path}: no float weight tensor of two or more dimensions (the ones matrix products and "
            "convolutions use): nothing to quantize"
        )
    return model


def _with_axis(t: TensorInfo, axis: int) -> TensorInfo:
    return TensorInfo(t.name, t.shape, t.stored, t.stored_bytes, axis, t.index, t.matmul)


def _split(
    items: Iterator[tuple[str, tuple[int, ...], str, int, int, bool]],
) -> tuple[list[TensorInfo], int, int]:
    """Weight tensors (two or more dimensions) and the count and values of the others."""
    tensors, others, other_values = [], 0, 0
    for i, (name, shape, stored, nbytes, axis, matmul) in enumerate(items):
        if len(shape) >= 2 and all(d > 0 for d in shape):
            tensors.append(TensorInfo(name, shape, stored, nbytes, axis % len(shape), i, matmul))
        else:
            others, other_values = others + 1, other_values + int(np.prod(shape, dtype=np.int64))
    return tensors, others, other_values


def _is_embedding(name: str) -> bool:
    return any(part in name.lower() for part in EMBEDDING_NAMES)


# ---- ONNX ---------------------------------------------------------------------------------------------------------


def _onnx(path: Path) -> ModelFile:
    onnx = _needs("onnx", "ONNX")
    from onnx import numpy_helper

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    consumers: dict[str, tuple[str, int, Any]] = {}
    stored_tensors = []  # initializers and Constant nodes' tensors, of the main graph and every subgraph
    for graph in onnx_graphs(proto.graph):
        stored_tensors.extend(graph.initializer)
        for node in graph.node:
            for slot, name in enumerate(node.input):
                consumers.setdefault(name, (node.op_type, slot, node))
            if node.op_type == "Constant":
                value = next((a.t for a in node.attribute if a.name == "value" and a.HasField("t")), None)
                if value is not None:
                    value.name = node.output[0]
                    stored_tensors.append(value)

    def axis_of(name: str, ndim: int) -> tuple[int, bool]:
        op, slot, node = consumers.get(name, ("", -1, None))
        if op == "Gemm" and slot == 1:
            trans = next((a.i for a in node.attribute if a.name == "transB"), 0)
            return (0 if trans else 1), True
        if op == "MatMul" and slot == 1:
            return ONNX_CHANNEL_AXIS[op] % ndim, True
        return ONNX_CHANNEL_AXIS.get(op, 0) % ndim if ndim else 0, False

    dtypes = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16"}
    dtypes[onnx.TensorProto.BFLOAT16] = "bfloat16"
    dtypes[onnx.TensorProto.DOUBLE] = "float64"
    items, protos = [], {}
    for init in stored_tensors:
        shape = tuple(int(d) for d in init.dims)
        stored = dtypes.get(init.data_type)
        if stored is None:  # integer initializers (shapes, indices, already-quantized weights) are not weights
            continue
        axis, matmul = axis_of(init.name, len(shape))
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(_np_name(stored)).itemsize
        protos[init.name] = init
        items.append((init.name, shape, stored, nbytes, axis, matmul))
    tensors, others, other_values = _split(iter(items))

    def load(info: TensorInfo) -> np.ndarray:
        tensor = protos[info.name]
        location = next((e.value for e in tensor.external_data if e.key == "location"), None)
        if location is not None and not (path.parent / location).is_file():
            raise ModelError(f"{path}: the external data of tensor {info.name!r} is missing ({path.parent / location})")
        return numpy_helper.to_array(tensor, base_dir=str(path.parent))

    return ModelFile(path, "onnx", tensors, others, other_values, load)


def onnx_graphs(graph: Any) -> Iterator[Any]:
    """``graph`` and every subgraph below it (the bodies of ``If``, ``Loop`` and ``Scan``), depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from onnx_graphs(attr.g)
            for sub in attr.graphs:
                yield from onnx_graphs(sub)


def _np_name(stored: str) -> Any:
    if stored == "bfloat16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return stored


# ---- safetensors --------------------------------------------------------------------------------------------------

SAFETENSORS_TYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}


def _safetensors(path: Path) -> ModelFile:
    st = _needs("safetensors", "safetensors")
    try:
        f = st.safe_open(str(path), framework="numpy")
        items = []
        for name in f.keys():  # noqa: SIM118 - a safetensors handle, not a dict
            piece = f.get_slice(name)
            stored = SAFETENSORS_TYPES.get(piece.get_dtype())
            if stored is None:
                continue
            shape = tuple(int(d) for d in piece.get_shape())
            nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(_np_name(stored)).itemsize
            items.append((name, shape, stored, nbytes, 0, len(shape) == 2 and not _is_embedding(name)))
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"{path}: not a readable safetensors file ({exc})") from None
    tensors, others, other_values = _split(iter(items))
    return ModelFile(path, "safetensors", tensors, others, other_values, lambda info: f.get_tensor(info.name))


# ---- GGUF ---------------------------------------------------------------------------------------------------------


def _gguf(path: Path) -> ModelFile:
    gguf = _needs("gguf", "GGUF")
    try:
        reader = gguf.GGUFReader(str(path), "r")
    except Exception as exc:
        raise ModelError(f"{path}: not a readable GGUF file ({type(exc).__name__}: {exc})") from None
    by_name = {t.name: t for t in reader.tensors}
    items = []
    for t in reader.tensors:
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))  # GGUF lists ne0 (the row length) first
        kind = t.tensor_type.name
        stored = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}.get(kind, kind)
        items.append((t.name, shape, stored, int(t.n_bytes), 0, len(shape) == 2 and not _is_embedding(t.name)))
    tensors, others, other_values = _split(iter(items))

    def load(info: TensorInfo) -> np.ndarray:
        t = by_name[info.name]
        if info.stored in ("Q8_0", "Q4_0"):
            from qbench.ops import ggml

            return ggml.dequantize(np.asarray(t.data), info.stored).reshape(info.shape)
        if info.stored in FLOAT_TYPES and info.stored != "bfloat16":
            return np.asarray(t.data).reshape(info.shape)
        from gguf import quants

        return quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(info.shape)

    return ModelFile(path, "gguf", tensors, others, other_values, load)


# ---- NumPy .npz ---------------------------------------------------------------------------------------------------


def _npz(path: Path) -> ModelFile:
    try:
        archive = np.load(str(path), allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not an archive")
        items = []
        for name in archive.files:
            with archive.zip.open(f"{name}.npy") as member:
                version = np.lib.format.read_magic(member)
                header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = header(member)
            if dtype.kind != "f" and dtype.name != "bfloat16":
                continue
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            items.append((name, tuple(shape), dtype.name, nbytes, 0, len(shape) == 2 and not _is_embedding(name)))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise ModelError(f"{path}: not a readable .npz archive ({exc})") from None
    tensors, others, other_values = _split(iter(items))
    return ModelFile(path, "npz", tensors, others, other_values, lambda info: archive[info.name], archive.close)
