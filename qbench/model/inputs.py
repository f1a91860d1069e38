"""The inputs an ONNX model is run on: the user's ``.npz`` checked against the graph, or random data made from it.

Every array carries a leading sample axis: sample ``i`` of every input is
one call of the model. Random data follows the graph's types and shapes;
symbolic dimensions take the values the user gives (``--dim NAME=VALUE``,
an unnamed one as ``INPUT[AXIS]=VALUE``). A leading axis that every input
shares by name is the batch axis and is 1 unless given. Integer inputs
that feed a ``Gather`` as indices stay below the table's first dimension;
others take ``int_range`` (default 0..255).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qbench.model.files import ModelError, onnx_graphs

#: Integer inputs with no table to index: values drawn from [low, high).
INT_RANGE = (0, 256)


@dataclass(frozen=True)
class InputSpec:
    """One graph input: its name, NumPy dtype and dimensions (an int, a symbolic name, or None when unnamed)."""

    name: str
    dtype: np.dtype
    dims: tuple[int | str | None, ...]

    def key(self, axis: int) -> str:
        """How ``--dim`` names axis ``axis``: its symbol, else ``input[axis]``."""
        d = self.dims[axis]
        return d if isinstance(d, str) else f"{self.name}[{axis}]"


def graph_inputs(proto: Any) -> list[InputSpec]:
    """The inputs a caller feeds (initializers listed as inputs are not among them)."""
    from onnx import helper

    inits = {i.name for i in proto.graph.initializer}
    specs = []
    for value in proto.graph.input:
        if value.name in inits:
            continue
        tensor = value.type.tensor_type
        if not value.type.HasField("tensor_type"):
            raise ModelError(f"input {value.name!r} is not a tensor (sequences and maps are not supported)")
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim)
        specs.append(InputSpec(value.name, dtype, dims))
    return specs


def batch_symbol(specs: list[InputSpec]) -> str | None:
    """The symbol every input has as its leading axis, if there is one: the batch axis."""
    firsts = {s.dims[0] if s.dims else None for s in specs}
    (first,) = firsts if len(firsts) == 1 else (None,)
    return first if isinstance(first, str) else None


def parse_dims(pairs: list[str]) -> dict[str, int]:
    """``["batch=1", "input[1]=512"]`` -> ``{"batch": 1, "input[1]": 512}``; a malformed pair is a ModelError."""
    dims = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value.isdigit() or int(value) < 1:
            raise ModelError(f"--dim {pair!r}: expected NAME=VALUE with a positive integer value, e.g. batch=1")
        dims[name] = int(value)
    return dims


def resolve_shapes(specs: list[InputSpec], dims: dict[str, int]) -> dict[str, tuple[int, ...]]:
    """Each input's concrete shape; every open dimension not given is named in one error, before any work."""
    batch = batch_symbol(specs)
    known = {batch: 1, **dims} if batch else dict(dims)
    shapes, missing = {}, []
    for spec in specs:
        shape = []
        for axis, d in enumerate(spec.dims):
            if isinstance(d, int) and d > 0:
                shape.append(d)
            elif spec.key(axis) in known:
                shape.append(known[spec.key(axis)])
            else:
                missing.append(f"{spec.key(axis)} (axis {axis} of input {spec.name!r})")
        shapes[spec.name] = tuple(shape)
    if missing:
        raise ModelError(
            "symbolic dimension(s) without a value: " + ", ".join(missing) + "; give each with --dim NAME=VALUE"
        )
    unknown = sorted(set(dims) - {s.key(a) for s in specs for a in range(len(s.dims))})
    if unknown:
        raise ModelError(f"--dim names no dimension of the model's inputs: {', '.join(unknown)}")
    return shapes


def gather_limits(proto: Any) -> dict[str, int]:
    """Graph inputs used as ``Gather`` indices -> rows of the table they index (the vocabulary)."""
    tables = {}
    for graph in onnx_graphs(proto.graph):
        for init in graph.initializer:
            if init.dims:
                tables[init.name] = int(init.dims[0])
        for node in graph.node:
            if node.op_type == "Constant":
                for a in node.attribute:
                    if a.name == "value" and a.t.dims:
                        tables[node.output[0]] = int(a.t.dims[0])
    limits: dict[str, int] = {}
    for graph in onnx_graphs(proto.graph):
        for node in graph.node:
            if node.op_type == "Gather" and len(node.input) > 1 and node.input[0] in tables:
                limit = tables[node.input[0]]
                limits[node.input[1]] = min(limits.get(node.input[1], limit), limit)
    return limits


def random_inputs(
    proto: Any,
    shapes: dict[str, tuple[int, ...]],
    samples: int,
    int_range: tuple[int, int] | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """``samples`` random calls: floats standard normal, integers within the range the graph can take."""
    rng = np.random.default_rng(seed)
    limits = gather_limits(proto)
    out = {}
    for spec in graph_inputs(proto):
        shape = (samples, *shapes[spec.name])
        if spec.dtype.kind == "f":
            out[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        elif spec.dtype.kind in "iu":
            low, high = int_range or ((0, limits[spec.name]) if spec.name in limits else INT_RANGE)
            out[spec.name] = rng.integers(low, high, size=shape).astype(spec.dtype)
        elif spec.dtype.kind == "b":
            out[spec.name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            raise ModelError(f"input {spec.name!r} of type {spec.dtype} cannot be made up: give it with --inputs")
    return out


def load_inputs(path: str | Path, specs: list[InputSpec]) -> dict[str, np.ndarray]:
    """The user's ``.npz``: one array per input name, a leading sample axis, dtypes and fixed sizes as the graph's."""
    try:
        with np.load(str(path), allow_pickle=False) as archive:
            given = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as exc:
        raise ModelError(f"--inputs {path}: not a readable .npz archive ({exc})") from None
    wanted = {s.name for s in specs}
    if set(given) != wanted:
        raise ModelError(
            f"--inputs {path}: holds {sorted(given)}, the model's inputs are {sorted(wanted)} "
            "(one array per input, named as the graph names it)"
        )
    counts = set()
    for spec in specs:
        arr = given[spec.name]
        if arr.dtype != spec.dtype:
            raise ModelError(f"--inputs {path}: {spec.name!r} is {arr.dtype}, the model takes {spec.dtype}")
        if arr.ndim != len(spec.dims) + 1:
            raise ModelError(
                f"--inputs {path}: {spec.name!r} has shape {arr.shape}; expected a sample axis and then "
                f"{len(spec.dims)} axes like {spec.dims}"
            )
        for axis, d in enumerate(spec.dims):
            if isinstance(d, int) and d > 0 and arr.shape[axis + 1] != d:
                raise ModelError(f"--inputs {path}: {spec.name!r} axis {axis} is {arr.shape[axis + 1]}, not {d}")
        counts.add(arr.shape[0])
    if len(counts) > 1 or 0 in counts:
        raise ModelError(f"--inputs {path}: every input needs the same number (at least 1) of samples, got {counts}")
    return given
