"""A model's matrix products per format, timed side by side with float32 on this CPU.

For each distinct weight shape (N outputs, K inputs) of the tensors that
feed matrix products, the GEMV (one row of activations: a generated token)
and a batched GEMM (``batch`` rows) are built as the matmul suite builds
them (:data:`qbench.cases.MATMUL`: the same data, kernels and checks) and
timed in interleaved rounds in one process (:func:`qbench.measure.timing.interleaved_rounds`),
against NumPy's float32 BLAS. ggml's formats and the int4 blocks (MatMulNBits
with int8 activations) run both. The model total weighs each shape by
how many tensors have it.

In a forward pass every layer's weights come from memory: the model is far
larger than the caches, and the other layers evict each one before it is
used again. A layer timed alone would instead find its weights in cache from
the call before, and the smaller a format's weights the more of them would
stay there (a 2048 x 5632 int8 matrix fits a 32 MiB L3, its float32 twin
does not), a gain no model sees. So each case is built as several copies
whose weights together are twice the last-level cache (:func:`copies`, at
most :data:`MAX_COPIES`), and each timed call uses the next copy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import pandas as pd

from qbench.model.files import TensorInfo
from qbench.model.scan import GGML_BLOCK

#: The float32 baseline: NumPy's BLAS.
BASELINE = ("numpy", "float32")
GGML_VARIANTS = ("Q8_0", "Q4_0")


def shapes(tensors: Sequence[TensorInfo]) -> Counter:
    """(N, K) of each matrix-product weight -> how many tensors have it."""
    return Counter((t.rows, t.cols) for t in tensors if t.matmul)


#: At most this many copies: weights below 1/128 of the cache are timed partly from it.
MAX_COPIES = 256


def copies(weight_bytes: int, cache_bytes: int) -> int:
    """How many copies of a case's weights make its working set at least twice ``cache_bytes``."""
    return min(MAX_COPIES, max(1, -(-2 * cache_bytes // max(weight_bytes, 1))))


def last_level_cache() -> int:
    """Bytes of this machine's last-level cache (32 MiB where it cannot be read)."""
    from qbench.measure.machine import describe

    caches = describe().get("caches") or {}
    return max(caches.values()) if caches else 32 << 20


def rotating(calls: list[Callable[[], object]]) -> Callable[[], object]:
    """One call that runs each of ``calls`` in turn."""
    state = {"i": 0}

    def call() -> object:
        i = state["i"]
        state["i"] = (i + 1) % len(calls)
        return calls[i]()

    return call


def _set_threads(threads: int) -> None:
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(threads)
    threadpool_limits(limits=threads, user_api="blas")


#: Peers timed beside qbench's variants where installed: variant -> (implementation, the variant it runs). The
#: same computation where a peer has one (ONNX Runtime's DynamicQuantizeMatMul and MatMulNBits at accuracy level 4,
#: PyTorch's fbgemm); for ggml's formats, which no installable peer runs, ONNX Runtime's blocks of 32 of the same
#: bits, also at level 4 (int8 activations, as ggml's).
PEERS = {
    "dynamic": (("onnxruntime", "dynamic"), ("torch", "dynamic")),
    "int4_b32": (("onnxruntime", "int4_b32"),),
    "int4_b128": (("onnxruntime", "int4_b128"),),
    "Q4_0": (("onnxruntime", "int4_b32"),),
    "Q8_0": (("onnxruntime", "int8_b32"),),
}


def _fits(variant: str, m: int, k: int) -> bool:
    """Whether ``variant`` runs an M x K activation: blocks must divide the rows, MatMulNBits with float
    activations is timed as a matrix-vector product only."""
    from qbench import cases

    block = GGML_BLOCK if variant in (*GGML_VARIANTS, "nbits4", "nbits8") else cases.matmul.INT8_NBITS.get(variant, 1)
    return k % block == 0 and not (m > 1 and variant in ("nbits4", "nbits8"))


def time_shapes(
    counts: Counter,
    variants: Sequence[str],
    *,
    batch: int = 16,
    threads: int = 1,
    rounds: int = 5,
    peers: bool = True,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """One row per shape, M (1 and ``batch``), variant and implementation (qbench, and with ``peers`` each
    installed peer of :data:`PEERS`, in the row of the variant it stands beside, ``runs`` naming what it ran):
    median seconds per call and the median over rounds of float32's time over the row's (its speed-up)."""
    from qbench import cases
    from qbench.measure import timing

    family = cases.MATMUL
    _set_threads(threads)
    cache = last_level_cache()
    wanted = list(dict.fromkeys(variants))
    beside: dict[tuple[str, str], list[str]] = {BASELINE: ["float32"], **{("qbench", v): [v] for v in wanted}}
    for v in wanted:
        for peer in PEERS.get(v, ()) if peers else ():
            beside.setdefault(peer, []).append(v)  # a peer run beside two formats is timed once
    rows = []
    for (n, k), count in sorted(counts.items(), key=lambda item: -item[0][0] * item[0][1]):
        for m in (1, batch):
            shape = f"{m}x{k}x{n}"
            if progress:
                progress(shape)
            calls, meta = {}, {}
            for (impl, runs), stands in beside.items():
                stands = [v for v in stands if _fits(v, m, k)]
                if not stands or not _fits(runs, m, k):
                    continue
                count_copies = copies(cases.matmul.weight_bytes(runs, shape), cache)
                try:
                    built = [
                        family.build(runs, {"shape": shape}, impl, threads, cases.Buffers(seed=n * k + c))[0]
                        for c in range(count_copies)
                    ]
                except (NotImplementedError, ImportError):  # no kernel on this CPU, or the peer is not installed
                    continue
                key = runs if impl in ("qbench", BASELINE[0]) else f"{impl} {runs}"
                calls[key], meta[key] = rotating(built), (impl, runs, stands)
            per_round = timing.interleaved_rounds(calls, rounds=rounds)
            for key, seconds in per_round.items():
                impl, runs, stands = meta[key]
                speedup = timing.median(timing.round_ratios(per_round, "float32", key))
                rows += [
                    {
                        "shape": f"{n}x{k}",
                        "tensors": count,
                        "m": m,
                        "variant": variant,
                        "impl": impl,
                        "runs": runs,
                        "seconds": timing.median(seconds),
                        "speedup": speedup,
                    }
                    for variant in stands
                ]
            del calls
    return pd.DataFrame(rows, columns=["shape", "tensors", "m", "variant", "impl", "runs", "seconds", "speedup"])


def model_speedup(times: pd.DataFrame, m: int, impl: str = "qbench") -> dict[str, tuple[float, float]]:
    """variant -> (the model's float32 time over ``impl``'s time at ``m`` rows, the share of the model's float32
    time it covers): shapes weighted by their tensor counts, over the shapes the variant runs (ggml's blocks need
    rows of a multiple of 32)."""
    sub = times[times["m"] == m]
    if sub.empty:
        return {}
    weighted = sub.assign(total=sub["seconds"] * sub["tensors"]).set_index("shape")
    base = weighted.loc[weighted["variant"] == "float32", "total"]
    out = {}
    mine = weighted[weighted["impl"].isin([impl, BASELINE[0]])]
    for variant, g in mine.groupby("variant"):
        covered = base.loc[g.index]
        out[variant] = (float(covered.sum() / g["total"].sum()), float(covered.sum() / base.sum()))
    return out


def best_peers(times: pd.DataFrame, m: int) -> dict[str, tuple[float, str, str]]:
    """variant -> (the fastest peer's model speed-up over float32 at ``m`` rows, the peer, what it ran), among
    the peers timed over the same shapes as qbench's variant (a peer that ran fewer would be a different sum)."""
    own, best = model_speedup(times, m), {}
    for impl in sorted(set(times["impl"]) - {"qbench", BASELINE[0]}):
        ran = times[(times["impl"] == impl) & (times["m"] == m)].groupby("variant")["runs"].first()
        for variant, (speedup, share) in model_speedup(times, m, impl).items():
            same = variant in own and abs(share - own[variant][1]) < 1e-9
            if variant in ran and same and speedup > best.get(variant, (0.0,))[0]:
                best[variant] = (speedup, impl, ran[variant])
    return best
