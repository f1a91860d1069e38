"""Linear layers (the matmul family): tables and the two pictures of what int8 buys for ``y = x @ W.T``.

Work is counted by the registry's rules (``cases.matmul``): operations
``2 M K N``, and the weight bytes a GEMV is judged by against the read ceiling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from qbench import cases

from .figures import Figure, ReportData, figure, legend_outside, plain_log_y, plt, save
from .headline import PEER_NAMES
from .tables import fmt_bytes, select

#: How each implementation of each variant is named in the tables and plots.
LABELS = {
    ("float32", "qbench"): "qbench float32 (the int8 loop's blocking)",
    ("float32", "numpy"): "NumPy float32 (BLAS)",
    ("float32", "onnxruntime"): "ONNX Runtime MatMul float32",
    ("float32", "torch"): "PyTorch linear float32",
    ("static", "qbench"): "qbench static int8 (qlinear_matmul)",
    ("static", "onnxruntime"): "ONNX Runtime QLinearMatMul",
    ("static", "torch"): "PyTorch quantized linear (fbgemm)",
    ("dynamic", "qbench"): "qbench dynamic int8 (dynamic_quantize_matmul)",
    ("dynamic", "onnxruntime"): "ONNX Runtime DynamicQuantizeMatMul",
    ("dynamic", "torch"): "PyTorch linear_dynamic (fbgemm)",
    ("integer", "qbench"): "qbench matmul_integer (int32 out, packed weights)",
    ("integer_kn", "qbench"): "qbench matmul_integer on unpacked (K, N) weights",
    ("integer", "onnxruntime"): "ONNX Runtime MatMulInteger",
    ("quantize_x", "qbench"): "qbench dynamic_quantize_linear of x alone",
    ("quantize_x", "numpy"): "NumPy dynamic quantization of x alone",
    ("Q8_0", "qbench"): "qbench Q8_0 (ggml.matmul, packed)",
    ("Q4_0", "qbench"): "qbench Q4_0 (ggml.matmul, packed)",
    ("nbits4", "qbench"): "qbench MatMulNBits 4-bit, blocks of 32",
    ("nbits8", "qbench"): "qbench MatMulNBits 8-bit, blocks of 32",
    ("nbits4", "onnxruntime"): "ONNX Runtime MatMulNBits 4-bit, blocks of 32",
    ("nbits8", "onnxruntime"): "ONNX Runtime MatMulNBits 8-bit, blocks of 32",
    ("int4_b32", "qbench"): "qbench MatMulNBits 4-bit, int8 activations, blocks of 32",
    ("int4_b128", "qbench"): "qbench MatMulNBits 4-bit, int8 activations, blocks of 128",
    ("int4_b32", "onnxruntime"): "ONNX Runtime MatMulNBits 4-bit, accuracy level 4, blocks of 32",
    ("int4_b128", "onnxruntime"): "ONNX Runtime MatMulNBits 4-bit, accuracy level 4, blocks of 128",
    ("int8_b32", "qbench"): "qbench MatMulNBits 8-bit, int8 activations, blocks of 32",
    ("int8_b32", "onnxruntime"): "ONNX Runtime MatMulNBits 8-bit, accuracy level 4, blocks of 32",
}


def _shape_columns(frame: pd.DataFrame, shapes: pd.Series) -> pd.DataFrame:
    dims = [cases.matmul.dims(s) for s in shapes]
    return frame.assign(shape=list(shapes), m=[d[0] for d in dims], k=[d[1] for d in dims], n=[d[2] for d in dims])


def layer_timings(frame: pd.DataFrame) -> pd.DataFrame:
    """Per shape, variant, implementation and thread count: median time, GOP/s and weight GB/s."""
    t = select(frame, "time_run", cls="Matmul")
    if t.empty:
        return pd.DataFrame()
    t = _shape_columns(t, t["param_shape"].astype(str))
    ops = [cases.matmul.ops(s) for s in t["shape"]]
    weights = [cases.matmul.weight_bytes(v, s) for v, s in zip(t["dtype"], t["shape"], strict=True)]
    return t.assign(
        variant=t["dtype"],
        threads=t["threads"].astype(int),
        seconds=t["value"],
        gops=np.asarray(ops) / t["value"].to_numpy() / 1e9,
        weight_gbps=np.asarray(weights) / t["value"].to_numpy() / 1e9,
        label=[LABELS.get((v, i), f"{i} {v}") for v, i in zip(t["dtype"], t["impl"], strict=True)],
    )


def layer_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """The side-by-side ratios: one row per shape, comparison and thread count."""
    r = select(frame, "track_ratio", cls="MatmulSideBySide")
    if not r.empty:
        r = r[r["param_comparison"].astype(str).str.startswith("matmul ")]  # older suites named them otherwise
    if r.empty:
        return pd.DataFrame(columns=["shape", "variant", "against", "threads", "ratio", "m", "k", "n"])
    pairs = [cases.Comparison.parse(str(c)) for c in r["param_comparison"]]
    r = _shape_columns(r, r["param_shape"].astype(str))
    return pd.DataFrame(
        {
            "shape": r["shape"].to_numpy(),
            "m": r["m"].to_numpy(),
            "k": r["k"].to_numpy(),
            "n": r["n"].to_numpy(),
            "variant": [p.dtype for p in pairs],
            "against": [p.against for p in pairs],
            "threads": r["threads"].astype(int).to_numpy(),
            "ratio": r["value"].to_numpy(),
        }
    )


def _shape_order(shapes: pd.Series) -> list[str]:
    return sorted(set(shapes), key=lambda s: (cases.matmul.dims(s)[0], cases.matmul.dims(s)[1:]))


def _weights_label(shape: str) -> str:
    _, k, n = cases.matmul.dims(shape)
    return f"{shape} (int8 weights {fmt_bytes(k * n)})"


def layer_table(frame: pd.DataFrame) -> pd.DataFrame:
    """GOP/s (1 thread) of every variant and implementation, one column per shape, weights' size named."""
    t = layer_timings(frame)
    if t.empty:
        return t
    t = t[(t["threads"] == 1) & (t["variant"] != "quantize_x")]  # the input's quantization alone has no matmul
    wide = t.pivot_table(index="label", columns="shape", values="gops")
    wide = wide[_shape_order(t["shape"])]
    wide.columns = [_weights_label(s) for s in wide.columns]
    wide.index.name = "GOP/s, 1 thread"
    return wide.reset_index()


def layer_ratio_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Each side-by-side comparison (rows) per shape (columns), at each thread count."""
    r = layer_ratios(frame)
    if r.empty:
        return pd.DataFrame()
    r = r.assign(comparison=[f"matmul {v} / {a}" for v, a in zip(r["variant"], r["against"], strict=True)])
    wide = r.pivot_table(index=["comparison", "threads"], columns="shape", values="ratio")
    wide = wide[_shape_order(r["shape"])]
    wide.columns.name = None
    order = {c: i for i, c in enumerate(cases.matmul.COMPARISONS)}
    return wide.reset_index().sort_values(["threads", "comparison"], key=lambda s: s.map(order).fillna(s))


#: The page's first table: each way to quantize a layer, as the reader knows it.
ANSWER_FORMATS = {
    "static": "int8 static (QLinearMatMul)",
    "dynamic": "int8 dynamic (DynamicQuantizeMatMul)",
    "Q8_0": "Q8_0 (ggml, 8.5 bits per weight)",
    "Q4_0": "Q4_0 (ggml, 4.5 bits per weight)",
    "nbits8": "8-bit blocks (MatMulNBits, 9 bits)",
    "nbits4": "4-bit blocks (MatMulNBits, 5 bits)",
    "int4_b32": "4-bit blocks of 32, int8 activations (MatMulNBits level 4, 5 bits)",
    "int4_b128": "4-bit blocks of 128, int8 activations (MatMulNBits level 4, 4.25 bits)",
    "int8_b32": "8-bit blocks of 32, int8 activations (MatMulNBits level 4, 9 bits)",
}


def _answer_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """The side-by-side ratios of the answer's formats at 1 thread."""
    r = layer_ratios(frame)
    return r[(r["threads"] == 1) & r["variant"].isin(list(ANSWER_FORMATS))]


def _fastest_peer(rows: pd.DataFrame) -> tuple[pd.Series, str] | None:
    """The row of the peer qbench stands furthest behind (its lowest ratio), and the peer's name; None if none."""
    peers = rows[rows["against"].str.split(" ").str[0].isin(list(PEER_NAMES))]
    if peers.empty:
        return None
    row = peers.loc[peers["ratio"].idxmin()]
    return row, PEER_NAMES[row["against"].split(" ")[0]]


def _kind(shape: str) -> str:
    m, k, n = cases.matmul.dims(shape)
    return f"{'GEMV' if m == 1 else 'GEMM'} {shape} (int8 weights {fmt_bytes(k * n)})"


def answer_table(frame: pd.DataFrame) -> pd.DataFrame:
    """What each format buys a linear layer, 1 thread, side by side: per shape, over NumPy's float32 layer and
    over the fastest peer that runs the same format (its name beside the ratio; below 1, the peer is faster)."""
    r = _answer_ratios(frame)
    rows = []
    for shape in _shape_order(r["shape"]) if not r.empty else []:
        for variant, label in ANSWER_FORMATS.items():
            at = r[(r["shape"] == shape) & (r["variant"] == variant)]
            if at.empty:
                continue
            flt = at.loc[at["against"] == "numpy float32", "ratio"]
            fastest = _fastest_peer(at)
            rows.append(
                {
                    "linear layer (M x K x N)": _kind(shape),
                    "format": label,
                    "x NumPy float32": f"{flt.median():.2f}" if len(flt) else "-",
                    "x the fastest peer": "-" if fastest is None else f"{fastest[0]['ratio']:.2f} ({fastest[1]})",
                }
            )
    return pd.DataFrame(rows)


def answer_lines(frame: pd.DataFrame) -> list[str]:
    """The table in words: per shape, the fastest format over float32, and qbench against the fastest peer."""
    r = _answer_ratios(frame)
    lines = []
    for shape in _shape_order(r["shape"]) if not r.empty else []:
        at = r[r["shape"] == shape]
        flt = at[at["against"] == "numpy float32"]
        if flt.empty:
            continue
        best = flt.loc[flt["ratio"].idxmax()]
        text = f"{_kind(shape)}: {ANSWER_FORMATS[best['variant']]} is {best['ratio']:.2f}x NumPy's float32 layer"
        ints = flt[flt["variant"].isin(["static", "dynamic"])]
        if len(ints) and best["variant"] not in ("static", "dynamic"):
            text += f" (int8 {ints['ratio'].max():.2f}x)"
        if slowest := _fastest_peer(at):
            worst, peer = slowest
            verb = "ahead of" if worst["ratio"] >= 1 else "behind"
            text += (
                f"; qbench's slowest against a peer: {ANSWER_FORMATS[worst['variant']]} at {worst['ratio']:.2f}x "
                f"{peer} ({verb} it)"
            )
        lines.append(text + ".")
    return lines


def layer_accuracy_table(frame: pd.DataFrame) -> pd.DataFrame:
    """SQNR (dB) of the int8 layer's output against float32, by how the activations were quantized."""
    sq = select(frame, "track_sqnr_db", cls="MatmulAccuracy")
    if sq.empty:
        return pd.DataFrame()
    wide = sq.pivot_table(index="param_method", columns="param_activations", values="value")
    wide = wide.reindex([m for m in cases.matmul.ACCURACY_METHODS if m in wide.index])
    wide.columns.name = None
    return wide.reset_index().rename(columns={"param_method": "activations quantized by"})


@figure("linear layer", order=62, needs_timings=False)
def plot_layer_answer(data: ReportData, out: Path) -> Figure | None:
    """The picture at a glance: int8 over float32 for a linear layer, by batch size, beside its accuracy."""
    r = layer_ratios(data.current)
    r = r[(r["threads"] == 1) & (r["against"] == "numpy float32") & r["variant"].isin(["static", "dynamic"])]
    acc = layer_accuracy_table(data.current)
    if r.empty:
        return None
    fig, (left, right) = plt().subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    colors = {kn: plt().get_cmap("tab10")(i) for i, kn in enumerate(sorted(set(zip(r["k"], r["n"], strict=True))))}
    for (variant, k, n), part in r.groupby(["variant", "k", "n"]):
        part = part.sort_values("m")
        style, marker = ("-", "o") if variant == "static" else ("--", "s")
        left.plot(
            part["m"], part["ratio"], style, marker=marker, color=colors[(k, n)], label=f"{variant}, K x N = {k} x {n}"
        )
    left.axhline(1.0, color="k", lw=0.8)
    left.axhline(4.0, color="0.5", lw=0.8, ls=":")
    left.text(1, 4.0, " 4x: a quarter of the weight bytes", fontsize=7, va="bottom", color="0.4")
    left.set_xscale("log", base=2)
    batches = sorted(set(r["m"]))
    left.set_xticks(batches, [str(b) for b in batches])
    left.set_xlim(0.7, max(batches) * 1.4)
    plain_log_y(left)
    left.set_ylim(min(0.5, r["ratio"].min() * 0.8), max(6.0, r["ratio"].max() * 1.25))
    left.set_xlabel("batch size M (rows of activations; 1 = GEMV, LLM decoding)")
    left.set_ylabel("int8 speed over NumPy float32 (x)")
    left.set_title("speed: above 1, int8 is faster (1 thread, side by side)", fontsize=10)
    legend_outside(left)
    if not acc.empty:
        methods = acc.iloc[:, 0].tolist()
        columns = list(acc.columns[1:])
        width = 0.8 / max(1, len(columns))
        for i, col in enumerate(columns):
            right.bar(np.arange(len(methods)) + i * width, acc[col].to_numpy(), width, label=f"{col} activations")
        right.set_xticks(np.arange(len(methods)) + width * (len(columns) - 1) / 2, methods, fontsize=8)
        right.set_ylabel("SQNR of the layer output vs float32 (dB)")
        right.set_title("accuracy: static (calibration method) or dynamic", fontsize=10)
        right.legend(fontsize=7, loc="lower left")
    else:
        right.axis("off")
    return save(
        fig,
        out,
        "layer_int8_vs_float32",
        "int8 vs float32 for a linear layer on this CPU",
        "Left: time of NumPy's float32 layer over qbench's int8 layer, measured alternately in one process "
        "(median of the rounds), by batch size; the dotted line is the 4x that a quarter of the weight bytes "
        "promises to a memory-bound GEMV. Right: SQNR of the int8 layer's output against float32 (int8 weights per "
        "channel), activations quantized with parameters calibrated on another batch, or dynamically.",
    )


@figure("linear layer speed", order=64, needs_timings=False)
def plot_layer_gops(data: ReportData, out: Path) -> Figure | None:
    """GOP/s of every implementation per shape (1 thread), GEMV shapes with their weight GB/s."""
    t = layer_timings(data.current)
    if t.empty:
        return None
    t = t[(t["threads"] == 1) & (t["variant"] != "quantize_x")]
    shapes = _shape_order(t["shape"])
    labels = [lab for lab in LABELS.values() if lab in set(t["label"])]
    fig, ax = plt().subplots(figsize=(12, 4.6))
    width = 0.85 / max(1, len(labels))
    cmap = plt().get_cmap("tab20")
    for i, label in enumerate(labels):
        # The median over result files: one commit measured from two environments has two rows per shape.
        gops = t[t["label"] == label].groupby("shape")["gops"].median().reindex(shapes)
        ax.bar(np.arange(len(shapes)) + i * width, gops.to_numpy(), width, label=label, color=cmap(i))
    ax.set_xticks(np.arange(len(shapes)) + 0.85 / 2 - width / 2, [_weights_label(s) for s in shapes], fontsize=7)
    plain_log_y(ax)
    ax.set_ylabel("GOP/s (2 M K N / time)")
    legend_outside(ax)
    return save(
        fig,
        out,
        "layer_gops",
        "Linear layers: operations per second by shape, 1 thread",
        "Median time per call of each implementation (asv), as GOP/s. For a GEMV (M = 1) the weights are read once "
        "per call, so GOP/s is 2 x weights per second: int8 reads a quarter of float32's bytes.",
    )
