"""A one-minute look at what uint8 quantization buys: error, memory and speed of one tensor."""

from __future__ import annotations

import numpy as np

from qbench import api, metrics, reference
from qbench.calibrate import calibrate
from qbench.timing import first_call_seconds, median_seconds


def run_demo(size: int = 1 << 22, seed: int = 0) -> dict[str, float]:
    """Quantize a normal(0, 1) float32 tensor to uint8; measure, print and return the numbers."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(size, dtype=np.float32)
    params = calibrate(x, "uint8")
    out = np.empty(size, np.uint8)
    compile_s = first_call_seconds(api.quantize, x, params, out=out)
    q = api.quantize(x, params, out=out)
    back = api.dequantize(q, params)
    if not np.array_equal(q, reference.quantize(x, params)):
        raise AssertionError("qbench.quantize disagrees with the NumPy reference")

    t_qbench = median_seconds(api.quantize, x, params, out=out)
    t_numpy = median_seconds(reference.quantize, x, params, repeat=5)
    t_copy = median_seconds(np.copyto, np.empty_like(x), x)
    t_sum_f32 = median_seconds(api.sum, x)
    t_sum_u8 = median_seconds(api.sum, q)
    results = {
        "elements": float(size),
        "sqnr_db": metrics.sqnr_db(x, back),
        "mse": metrics.mse(x, back),
        "max_abs_error": metrics.max_abs_error(x, back),
        "scale/2": float(params.scale) / 2,
        "float32_bytes": float(x.nbytes),
        "quantized_bytes": float(q.nbytes),
        "memory_ratio": x.nbytes / q.nbytes,
        "first_call_s": compile_s,
        "quantize_s": t_qbench,
        "numpy_quantize_s": t_numpy,
        "copy_s": t_copy,
        "sum_float32_s": t_sum_f32,
        "sum_uint8_s": t_sum_u8,
        "quantize_vs_numpy": t_numpy / t_qbench,
        "quantize_vs_copy": t_copy / t_qbench,
        "sum_uint8_vs_float32": t_sum_f32 / t_sum_u8,
    }
    print(f"qbench demo: {size:,} float32 values from N(0, 1) -> uint8 ({params})")
    print(
        f"  accuracy : SQNR {results['sqnr_db']:.2f} dB, MSE {results['mse']:.3g}, "
        f"max |error| {results['max_abs_error']:.4g} (scale/2 = {results['scale/2']:.4g})"
    )
    print(
        f"  memory   : {x.nbytes / 2**20:.1f} MiB float32 -> {q.nbytes / 2**20:.1f} MiB uint8 "
        f"({results['memory_ratio']:.1f}x smaller)"
    )
    print(
        f"  speed    : quantize {results['quantize_vs_numpy']:.1f}x the NumPy reference, "
        f"{results['quantize_vs_copy']:.2f}x the element rate of np.copyto on the float32 array"
    )
    print(
        f"             sum of uint8 {results['sum_uint8_vs_float32']:.2f}x as fast as sum of float32 "
        f"(medians, same run)"
    )
    print(f"  first call (compile or cache load): {compile_s * 1e3:.0f} ms, not included above")
    return results
