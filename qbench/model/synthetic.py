"""Model files to try ``qbench model`` on without downloading one: an ONNX MLP and a Llama-shaped safetensors file.

    python -m qbench.model.synthetic mlp mlp.onnx                 # 768 -> 3072 -> 768, float32
    python -m qbench.model.synthetic llama llama-1b.safetensors   # 1.1B parameters (TinyLlama's shapes), bfloat16
    python -m qbench.model.synthetic llama llama-7b.safetensors --size 7b   # Llama 2 7B's shapes (13.5 GB)

Weights are random with heavy tails (Student's t, 5 degrees of freedom), as
trained layers have outliers that a normal distribution lacks; the tests
build their models with the same functions.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def weights(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 0.02) -> np.ndarray:
    """Heavy-tailed float32 weights of standard deviation about ``scale``."""
    return (rng.standard_t(5, size=shape) * (scale / np.sqrt(5 / 3))).astype(np.float32)


def onnx_mlp(path: str | Path, layers: Sequence[tuple[np.ndarray, np.ndarray | None]], external: bool = False) -> Path:
    """An ONNX MLP: layer i is ``MatMul`` with weights (K, N) when i is even, ``Gemm`` with ``transB=1`` and
    weights (N, K) when odd, each plus its bias (if any) and a ``Relu`` between layers. ``external`` writes the
    weights to ``<name>.data`` beside the model (ONNX external data)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, x = [], [], "x"
    k0 = layers[0][0].shape[0]
    for i, (w, b) in enumerate(layers):
        name, out = f"W{i + 1}", f"h{i + 1}"
        inits.append(numpy_helper.from_array(w, name))
        if i % 2 == 0:
            nodes.append(helper.make_node("MatMul", [x, name], [out]))
            n = w.shape[1]
        else:
            nodes.append(helper.make_node("Gemm", [x, name], [out], transB=1))
            n = w.shape[0]
        if b is not None:
            inits.append(numpy_helper.from_array(b, f"B{i + 1}"))
            nodes.append(helper.make_node("Add", [out, f"B{i + 1}"], [f"{out}b"]))
            out = f"{out}b"
        if i + 1 < len(layers):
            nodes.append(helper.make_node("Relu", [out], [f"{out}r"]))
            out = f"{out}r"
        x = out
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k0])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, n])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = Path(path)
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, location=f"{path.stem}.data", size_threshold=0)
    else:
        onnx.save_model(model, str(path))
    return path


def mlp_layers(sizes: Sequence[int], seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Weights and biases for :func:`onnx_mlp` through ``sizes`` (input, hidden..., output)."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (k, n) in enumerate(zip(sizes, sizes[1:], strict=False)):
        w = weights(rng, (k, n) if i % 2 == 0 else (n, k), 1 / np.sqrt(k))
        layers.append((w, weights(rng, (n,), 0.01)))
    return layers


#: TinyLlama 1.1B's shapes: hidden 2048, MLP 5632, 22 layers, 32 query heads and 4 key/value heads of 64.
LLAMA_1B = {"hidden": 2048, "intermediate": 5632, "layers": 22, "kv": 256, "vocab": 32000}
#: Llama 2 7B's shapes: hidden 4096, MLP 11008, 32 layers, 32 heads of 128 for queries, keys and values.
LLAMA_7B = {"hidden": 4096, "intermediate": 11008, "layers": 32, "kv": 4096, "vocab": 32000}
SAFETENSORS_DTYPES = {"bfloat16": "BF16", "float16": "F16", "float32": "F32"}


def llama_shapes(**shape: int) -> dict[str, tuple[int, ...]]:
    """A Llama's tensors in file order, PyTorch's names and (out, in) layout: ``shape`` overrides :data:`LLAMA_1B`."""
    s = {**LLAMA_1B, **shape}
    h, m, kv = s["hidden"], s["intermediate"], s["kv"]
    shapes = {"model.embed_tokens.weight": (s["vocab"], h)}
    for i in range(s["layers"]):
        p = f"model.layers.{i}."
        for name, shp in (
            ("self_attn.q_proj", (h, h)),
            ("self_attn.k_proj", (kv, h)),
            ("self_attn.v_proj", (kv, h)),
            ("self_attn.o_proj", (h, h)),
            ("mlp.gate_proj", (m, h)),
            ("mlp.up_proj", (m, h)),
            ("mlp.down_proj", (h, m)),
        ):
            shapes[f"{p}{name}.weight"] = shp
        for norm in ("input_layernorm", "post_attention_layernorm"):
            shapes[f"{p}{norm}.weight"] = (h,)
    shapes["model.norm.weight"] = (h,)
    shapes["lm_head.weight"] = (s["vocab"], h)
    return shapes


def llama_safetensors(path: str | Path, *, dtype: str = "bfloat16", seed: int = 0, **shape: int) -> Path:
    """A Llama-shaped safetensors file of random weights (norms of ones), written one tensor at a time, so a
    7B-parameter file needs one tensor's memory, not the file's."""
    import json

    import ml_dtypes

    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    itemsize = np.dtype(np_dtype).itemsize
    shapes = llama_shapes(**shape)
    header, offset = {}, 0
    for name, shp in shapes.items():
        size = int(np.prod(shp)) * itemsize
        header[name] = {"dtype": SAFETENSORS_DTYPES[dtype], "shape": list(shp), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text)
        for shp in shapes.values():
            values = np.ones(shp, np.float32) if len(shp) == 1 else weights(rng, shp)
            f.write(values.astype(np_dtype).tobytes())
    return Path(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qbench.model.synthetic", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    mlp = sub.add_parser("mlp", help="an ONNX MLP")
    mlp.add_argument("path")
    mlp.add_argument("--sizes", default="768,3072,768", help="layer widths (default: %(default)s)")
    mlp.add_argument("--external", action="store_true", help="weights as ONNX external data")
    llama = sub.add_parser("llama", help="a Llama-shaped safetensors file (default: TinyLlama's 1.1B shapes)")
    llama.add_argument("path")
    llama.add_argument("--size", choices=["1b", "7b"], default="1b", help="TinyLlama 1.1B's or Llama 2 7B's shapes")
    llama.add_argument("--layers", type=int, help="layers (default: the size's own)")
    llama.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    args = parser.parse_args(argv)
    if args.kind == "mlp":
        out = onnx_mlp(args.path, mlp_layers([int(v) for v in args.sizes.split(",")]), args.external)
    else:
        shape = dict(LLAMA_7B if args.size == "7b" else LLAMA_1B)
        shape["layers"] = args.layers or shape["layers"]
        out = llama_safetensors(args.path, dtype=args.dtype, **shape)
    print(f"wrote {out} ({out.stat().st_size / 1e9:.3g} GB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
