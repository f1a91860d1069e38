"""The quantized forms of an ONNX model, each made by ONNX Runtime's own quantization tools.

- ``dynamic-int8``: ``quantize_dynamic``, int8 weights per channel where the
  operator allows it, activations quantized at run time.
- ``static-int8-<method>``: ``quantize_static`` in QDQ form, uint8
  activations and int8 weights per channel, calibrated on the run's
  inputs with ONNX Runtime's MinMax, Entropy or Percentile method (the three
  qbench implements too).
- ``int4-b<block>[-acc4]``: ``MatMulNBitsQuantizer``, symmetric 4-bit
  weights of ``MatMul`` in blocks of 32 or 128; ``-acc4`` computes with
  int8 activations (accuracy level 4), else in float (level 0).

Weights stored as ``Constant`` nodes are moved into their graph's
initializers first (the quantizers only see initializers), and subgraphs
(``If``, ``Loop``, ``Scan`` bodies) are quantized too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Above this a model is written with its weights as external data (protobuf's 2 GiB limit, with room to spare).
EXTERNAL_DATA_BYTES = 2**31 - 2**20


@dataclass(frozen=True)
class Variant:
    name: str
    label: str  # as the verdict says it
    kind: str  # "float", "dynamic", "static", "int4"
    option: Any = None  # the calibration method, or (block size, accuracy level)


VARIANTS = {
    v.name: v
    for v in (
        Variant("float32", "float32", "float"),
        Variant("dynamic-int8", "dynamic int8", "dynamic"),
        Variant("static-int8-minmax", "static int8 (MinMax)", "static", "MinMax"),
        Variant("static-int8-entropy", "static int8 (entropy)", "static", "Entropy"),
        Variant("static-int8-percentile", "static int8 (percentile)", "static", "Percentile"),
        Variant("int4-b32", "4-bit b32", "int4", (32, 0)),
        Variant("int4-b32-acc4", "4-bit b32, int8 compute", "int4", (32, 4)),
        Variant("int4-b128", "4-bit b128", "int4", (128, 0)),
        Variant("int4-b128-acc4", "4-bit b128, int8 compute", "int4", (128, 4)),
    )
}


def pick(names: list[str] | None) -> list[Variant]:
    """The variants ``names`` selects, float32 always first (everything is compared with it)."""
    if not names:
        return list(VARIANTS.values())
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(unknown)}; accepted: {', '.join(VARIANTS)}")
    return [VARIANTS["float32"], *(VARIANTS[n] for n in dict.fromkeys(names) if n != "float32")]


def constants_as_initializers(proto: Any) -> int:
    """Move every float ``Constant`` tensor of two or more dimensions into its graph's initializers, in place."""
    import onnx

    from qbench.model.files import onnx_graphs

    moved = 0
    for graph in onnx_graphs(proto.graph):
        keep = []
        for node in graph.node:
            value = next((a.t for a in node.attribute if a.name == "value" and a.HasField("t")), None)
            is_weight = value is not None and len(value.dims) >= 2
            if node.op_type == "Constant" and is_weight and value.data_type in (onnx.TensorProto.FLOAT,):
                tensor = onnx.TensorProto()
                tensor.CopyFrom(value)
                tensor.name = node.output[0]
                graph.initializer.append(tensor)
                moved += 1
            else:
                keep.append(node)
        if len(keep) != len(graph.node):
            del graph.node[:]
            graph.node.extend(keep)
    return moved


class Reader:
    """ONNX Runtime's calibration data reader over the run's samples."""

    def __init__(self, inputs: dict[str, np.ndarray]):
        self.inputs, self.i = inputs, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        n = len(next(iter(self.inputs.values())))
        if self.i >= n:
            return None
        self.i += 1
        return {k: v[self.i - 1, ...] for k, v in self.inputs.items()}

    def rewind(self) -> None:
        self.i = 0

    def __iter__(self) -> Reader:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        feed = self.get_next()
        if feed is None:
            raise StopIteration
        return feed


def prepared(source: Path, out: Path) -> Path:
    """``source`` with its constant weights as initializers, written to ``out``: what every quantizer reads."""
    import onnx

    proto = onnx.load(str(source))
    constants_as_initializers(proto)
    _save(proto, out)
    return out


def _save(proto: Any, out: Path) -> None:
    import onnx

    large = proto.ByteSize() > EXTERNAL_DATA_BYTES
    onnx.save(proto, str(out), save_as_external_data=large, location=out.name + ".data" if large else None)


def make(variant: Variant, source: Path, out: Path, inputs: dict[str, np.ndarray]) -> Path:
    """Write ``variant`` of the prepared model ``source`` to ``out``; ONNX Runtime's errors pass through."""
    from onnxruntime import quantization as q

    large = source.stat().st_size > EXTERNAL_DATA_BYTES
    if variant.kind == "dynamic":
        q.quantize_dynamic(
            source,
            out,
            per_channel=True,
            weight_type=q.QuantType.QInt8,
            use_external_data_format=large,
            extra_options={"EnableSubgraph": True},
        )
    elif variant.kind == "static":
        q.quantize_static(
            source,
            out,
            Reader(inputs),
            quant_format=q.QuantFormat.QDQ,
            per_channel=True,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            calibrate_method=getattr(q.CalibrationMethod, variant.option),
            use_external_data_format=large,
            extra_options={"EnableSubgraph": True},
        )
    elif variant.kind == "int4":
        import onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        block, level = variant.option
        quantizer = MatMulNBitsQuantizer(
            onnx.load(str(source)), bits=4, block_size=block, is_symmetric=True, accuracy_level=level
        )
        quantizer.process()
        quantizer.model.save_model_to_file(str(out), use_external_data_format=large)
    else:
        raise ValueError(f"{variant.name} is not a quantized variant")
    return out


def weight_counts(path: Path) -> dict[str, int]:
    """Weight tensors (two or more dimensions) of a model file by what they are stored as: float or integer."""
    import onnx

    from qbench.model.files import onnx_graphs

    proto = onnx.load(str(path), load_external_data=False)
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE)
    counts = {"float": 0, "integer": 0, "float_values": 0}
    for graph in onnx_graphs(proto.graph):
        tensors = list(graph.initializer)
        tensors += [a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute if a.HasField("t")]
        for t in tensors:
            if len(t.dims) < 2:
                continue
            if t.data_type in floats:
                counts["float"] += 1
                counts["float_values"] += int(np.prod(t.dims, dtype=np.int64))
            else:
                counts["integer"] += 1
    return counts


def file_bytes(path: Path) -> int:
    """The model's bytes on disk, its external data files included."""
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
