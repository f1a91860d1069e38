"""A one-minute look at what uint8 quantization buys: error, memory and speed of one tensor."""

from __future__ import annotations

import numpy as np

from qbench import ops, reference
from qbench.measure.timing import first_call_seconds, interleaved_rounds, median, round_ratios
from qbench.ops import metrics
from qbench.ops.calibrate import calibrate

#: Rounds of the speed comparison: each times every call once, in alternating order.
ROUNDS = 9


def run_demo(size: int = 1 << 22, seed: int = 0, rounds: int = ROUNDS) -> dict[str, float]:
    """Quantize a normal(0, 1) float32 tensor to uint8; measure, print and return the numbers.

    Speed is measured as the suite measures it: the calls compared are timed in
    alternating order round after round, each ratio taken within a round (both
    sides saw the same machine), and the median over rounds reported with the
    range of the rounds beside it.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a whole number of elements >= 1, got {size!r}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(size, dtype=np.float32)
    params = calibrate(x, "uint8")
    out = np.empty(size, np.uint8)
    compile_s = first_call_seconds(ops.quantize, x, params, out=out)
    q = ops.quantize(x, params, out=out).copy()
    back = ops.dequantize(q, params)
    if not np.array_equal(q, reference.quantize(x, params)):
        raise AssertionError("qbench.quantize disagrees with the NumPy reference")

    copy_to = np.empty_like(x)
    times = interleaved_rounds(
        {
            "quantize": lambda: ops.quantize(x, params, out=out),
            "numpy_quantize": lambda: reference.quantize(x, params),
            "copy": lambda: np.copyto(copy_to, x),
            "sum_float32": lambda: ops.sum(x),
            "sum_uint8": lambda: ops.sum(q),
        },
        rounds=rounds,
    )
    ratios = {
        "quantize_vs_numpy": round_ratios(times, "numpy_quantize", "quantize"),
        "quantize_vs_copy": round_ratios(times, "copy", "quantize"),
        "sum_uint8_vs_float32": round_ratios(times, "sum_float32", "sum_uint8"),
    }
    results: dict[str, float] = {
        "elements": float(size),
        "sqnr_db": metrics.sqnr_db(x, back),
        "mse": metrics.mse(x, back),
        "max_abs_error": metrics.max_abs_error(x, back),
        "scale/2": float(params.scale) / 2,
        "float32_bytes": float(x.nbytes),
        "quantized_bytes": float(q.nbytes),
        "memory_ratio": x.nbytes / q.nbytes,
        "first_call_s": compile_s,
        "rounds": float(rounds),
    }
    results.update({f"{name}_s": median(t) for name, t in times.items()})
    for name, per_round in ratios.items():
        results[name] = median(per_round)
        results[f"{name}_low"], results[f"{name}_high"] = min(per_round), max(per_round)

    def spread(name: str) -> str:
        return f"(rounds: {results[name + '_low']:.2f} to {results[name + '_high']:.2f})"

    print(f"qbench demo: {size:,} float32 values from N(0, 1) -> uint8 ({params})")
    print(
        f"  accuracy : SQNR {results['sqnr_db']:.2f} dB, MSE {results['mse']:.3g}, "
        f"max |error| {results['max_abs_error']:.4g} (scale/2 = {results['scale/2']:.4g})"
    )
    print(
        f"  memory   : {x.nbytes / 2**20:.1f} MiB float32 -> {q.nbytes / 2**20:.1f} MiB uint8 "
        f"({results['memory_ratio']:.1f}x smaller)"
    )
    print(f"  speed    : medians of {rounds} interleaved rounds, each ratio taken within a round")
    print(
        f"             quantize {results['quantize_vs_numpy']:.1f}x the NumPy reference {spread('quantize_vs_numpy')}"
    )
    print(
        f"             quantize {results['quantize_vs_copy']:.2f}x the element rate of np.copyto on the float32 "
        f"array {spread('quantize_vs_copy')}"
    )
    print(
        f"             sum of uint8 {results['sum_uint8_vs_float32']:.2f}x as fast as sum of float32 "
        f"{spread('sum_uint8_vs_float32')}"
    )
    print(f"  first call (compile or cache load): {compile_s * 1e3:.0f} ms, not included above")
    return results
