"""ggml's Q4_0 / Q8_0 products against ONNX Runtime's 4-bit MatMulNBits, side by side in one process.

    python -m benchmarks.block_peers [--threads 1] [--rounds 7] [--shapes 1x4096x4096,1x4096x11008,...]

For each shape MxKxN: NumPy float32 (BLAS), qbench's Q4_0 and Q8_0 ``ggml.matmul`` on weights packed once
(``pack_blocks``), qbench's float-activation MatMulNBits (``matmul_nbits``, 4-bit blocks of 32, M = 1 only) and ONNX
Runtime's MatMulNBits (4-bit blocks of 32 of the same weights, as initializers) at accuracy level 0 (float) and 4
(int8 activations, its fast path); interleaved rounds, medians. It prints a Markdown table: each over NumPy
float32, Q4_0 and Q8_0 over ONNX Runtime's level 4, and Q4_0's operations per second over the packed int8
micro-kernel's measured peak. Data and checks are the registry's (:mod:`qbench.cases.matmul`).
"""

from __future__ import annotations

import argparse

from benchmarks.benchmarks import _common
from qbench import cases, peers
from qbench.cases import Buffers
from qbench.cpu import describe_cpu
from qbench.kernels.isa import choose
from qbench.measure.timing import interleaved_rounds, median
from qbench.ops import blocks

SHAPES = "1x4096x4096,1x4096x11008,1x14336x4096,8x4096x4096,64x4096x4096,512x4096x4096"
IMPLS = {
    "NumPy float32": ("float32", "numpy"),
    "qbench Q4_0": ("Q4_0", "qbench"),
    "qbench Q8_0": ("Q8_0", "qbench"),
    "qbench MatMulNBits 4-bit": ("nbits4", "qbench"),
}
LEVELS = {0: "ONNX Runtime MatMulNBits 4-bit, level 0", 4: "ONNX Runtime MatMulNBits 4-bit, level 4"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--shapes", default=SHAPES)
    args = parser.parse_args()
    _common.set_threads(args.threads, "qbench", numpy_threads=True)  # NumPy's BLAS held to the budget too
    cpu, path = describe_cpu(), choose()
    print(
        f"{cpu['cpu']}, {', '.join(cpu['simd'])}, {cpu['cores']} cores; path {path and path.name}; "
        f"{args.threads} thread(s); medians of {args.rounds} interleaved rounds\n"
    )
    peak_call, peak_ops = cases.matmul.peak_call("integer", Buffers(seed=1))
    names = [*IMPLS, *LEVELS.values()]
    print(
        "| shape MxKxN | " + " | ".join(f"{n} / NumPy f32" for n in names) + " | Q4_0 / level 4 | Q8_0 / level 4 "
        "| Q4_0 share of the int8 peak |"
    )
    print("|" + "---|" * (len(names) + 4))
    for shape in args.shapes.split(","):
        calls, data = {}, None
        for name, (variant, impl) in IMPLS.items():
            try:
                run, built = cases.MATMUL.build(variant, shape, impl, args.threads, Buffers(seed=1))
                cases.MATMUL.check(built, impl, run())
                calls[name], data = run, data or built
            except NotImplementedError as exc:
                print(f"<!-- {name}: {exc} -->")
        b, scales, _ = blocks.quantize_nbits(data.w, bits=4, block_size=32)
        for level, name in LEVELS.items():
            out = data.out.astype("float32")
            calls[name] = peers.onnxruntime_matmul_nbits(
                data.x, b, scales, None, 4, 32, out, args.threads, accuracy_level=level
            )
        calls["peak"] = peak_call
        t = {name: median(v) for name, v in interleaved_rounds(calls, rounds=args.rounds, budget_s=0.05).items()}
        base = t["NumPy float32"]
        cells = [f"{base / t[n]:.2f}x" if n in t else "-" for n in names]
        versus = [f"{t[LEVELS[4]] / t[n]:.2f}" for n in ("qbench Q4_0", "qbench Q8_0")]
        m, k, n = (int(v) for v in shape.split("x"))
        share = (2 * m * k * n / t["qbench Q4_0"]) / (peak_ops / t["peak"])
        print(f"| {shape} | " + " | ".join(cells + versus) + f" | {share:.2f} |", flush=True)


if __name__ == "__main__":
    main()
