"""ggml's Q4_0 / Q8_0 products against ONNX Runtime's MatMulNBits, side by side in one process.

    python -m benchmarks.block_peers [--threads 1] [--rounds 7] [--shapes 1x4096x4096,1x4096x11008,...]

For each shape MxKxN: NumPy float32 (BLAS), qbench's Q4_0 and Q8_0 (``ggml.matmul`` on weights packed once by
``pack_blocks``) and its MatMulNBits 4-bit blocks of 32 and 128 and 8-bit blocks of 32 with int8 activations
(``nbits.matmul_nbits_int8`` on ``pack_nbits``), ONNX Runtime's MatMulNBits on the same weights at accuracy level 4
(int8 activations, its fast path) and, for a GEMV, level 0 (float); interleaved rounds, medians. It prints a
Markdown table: each over NumPy float32, qbench's block products over ONNX Runtime's level 4 of the same bits, and
Q4_0's operations per second over the packed int8 micro-kernel's measured peak. Data and checks are the registry's
(:mod:`qbench.cases.matmul`).
"""

from __future__ import annotations

import argparse

from benchmarks.benchmarks import _common
from qbench import cases
from qbench.cases import Buffers
from qbench.cpu import describe_cpu
from qbench.kernels.isa import choose
from qbench.measure.timing import interleaved_rounds, median

SHAPES = "1x4096x4096,1x4096x11008,1x14336x4096,8x4096x4096,64x4096x4096,512x4096x4096"
IMPLS = {
    "NumPy float32": ("float32", "numpy"),
    "qbench Q4_0": ("Q4_0", "qbench"),
    "qbench Q8_0": ("Q8_0", "qbench"),
    "qbench int4 b32, int8 activations": ("int4_b32", "qbench"),
    "qbench int4 b128, int8 activations": ("int4_b128", "qbench"),
    "qbench int8 b32, int8 activations": ("int8_b32", "qbench"),
    "ONNX Runtime 4-bit b32, level 4": ("int4_b32", "onnxruntime"),
    "ONNX Runtime 4-bit b128, level 4": ("int4_b128", "onnxruntime"),
    "ONNX Runtime 8-bit b32, level 4": ("int8_b32", "onnxruntime"),
    "ONNX Runtime 4-bit b32, level 0": ("nbits4", "onnxruntime"),
}
VERSUS = {
    "qbench Q4_0": "ONNX Runtime 4-bit b32, level 4",
    "qbench int4 b32, int8 activations": "ONNX Runtime 4-bit b32, level 4",
    "qbench int4 b128, int8 activations": "ONNX Runtime 4-bit b128, level 4",
    "qbench Q8_0": "ONNX Runtime 8-bit b32, level 4",
    "qbench int8 b32, int8 activations": "ONNX Runtime 8-bit b32, level 4",
}


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
    versus = [
        f"{mine.split(' ', 1)[1]} / {peer.split(', ')[0].replace('ONNX Runtime ', 'ORT ')} level 4"
        for mine, peer in VERSUS.items()
    ]
    print(
        "| shape MxKxN | "
        + " | ".join(f"{n} / NumPy f32" for n in IMPLS)
        + " | "
        + " | ".join(versus)
        + " | Q4_0 share of the int8 peak |"
    )
    print("|" + "---|" * (len(IMPLS) + len(VERSUS) + 2))
    for shape in args.shapes.split(","):
        calls = {}
        for name, (variant, impl) in IMPLS.items():
            try:
                run, built = cases.MATMUL.build(variant, shape, impl, args.threads, Buffers(seed=1))
                cases.MATMUL.check(built, impl, run())
                calls[name] = run
            except NotImplementedError as exc:
                print(f"<!-- {name}: {exc} -->")
        calls["peak"] = peak_call
        t = {name: median(v) for name, v in interleaved_rounds(calls, rounds=args.rounds, budget_s=0.05).items()}
        base = t["NumPy float32"]
        cells = [f"{base / t[n]:.2f}x" if n in t else "-" for n in IMPLS]
        cells += [f"{t[peer] / t[mine]:.2f}" if peer in t and mine in t else "-" for mine, peer in VERSUS.items()]
        m, k, n = (int(v) for v in shape.split("x"))
        share = (2 * m * k * n / t["qbench Q4_0"]) / (peak_ops / t["peak"])
        print(f"| {shape} | " + " | ".join(cells) + f" | {share:.2f} |", flush=True)


if __name__ == "__main__":
    main()
