"""ggml's Q4_0 / Q8_0 matrix-vector products against ONNX Runtime's 4-bit MatMulNBits, side by side in one process.

    python -m benchmarks.block_peers [--threads 1] [--rounds 7] [--shapes 1x4096x4096,1x4096x11008,1x14336x4096]

For each shape MxKxN (M = 1): NumPy float32 (BLAS), qbench's Q4_0 and Q8_0 ``ggml.matvec`` on weights packed once
(``pack_blocks``), qbench's float-activation MatMulNBits (``matmul_nbits``, 4-bit blocks of 32) and ONNX
Runtime's MatMulNBits at accuracy level 0 (float) and 4 (int8 activations, its fast path), weights as
initializers; interleaved rounds, medians. It prints a Markdown table: each over NumPy float32, and Q4_0 over
ONNX Runtime's level 4. Data and checks are the registry's (:mod:`qbench.cases.matmul`).
"""

from __future__ import annotations

import argparse

from benchmarks.benchmarks import _common
from qbench import cases, peers
from qbench.cases import Buffers
from qbench.cpu import describe_cpu
from qbench.kernels.isa import choose
from qbench.measure.timing import interleaved_rounds, median

IMPLS = {
    "NumPy float32": ("float32", "numpy"),
    "qbench Q4_0": ("Q4_0", "qbench"),
    "qbench Q8_0": ("Q8_0", "qbench"),
    "qbench MatMulNBits 4-bit": ("nbits4", "qbench"),
    "ONNX Runtime MatMulNBits 4-bit, level 0": ("nbits4", "onnxruntime"),
}
LEVEL_4 = "ONNX Runtime MatMulNBits 4-bit, level 4"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--shapes", default="1x4096x4096,1x4096x11008,1x14336x4096")
    args = parser.parse_args()
    _common.set_threads(args.threads, "qbench", numpy_threads=True)  # NumPy's BLAS held to the budget too
    cpu, path = describe_cpu(), choose()
    print(
        f"{cpu['cpu']}, {', '.join(cpu['simd'])}, {cpu['cores']} cores; path {path and path.name}; "
        f"{args.threads} thread(s); medians of {args.rounds} interleaved rounds\n"
    )
    names = [*IMPLS, LEVEL_4]
    print("| shape MxKxN | " + " | ".join(f"{n} / NumPy f32" for n in names) + " | Q4_0 / level 4 | Q8_0 / level 4 |")
    print("|" + "---|" * (len(names) + 3))
    for shape in args.shapes.split(","):
        calls = {}
        for name, (variant, impl) in IMPLS.items():
            try:
                run, data = cases.MATMUL.build(variant, shape, impl, args.threads, Buffers(seed=1))
                cases.MATMUL.check(data, impl, run())
                calls[name] = run
            except NotImplementedError as exc:
                print(f"<!-- {name}: {exc} -->")
            if (variant, impl) == ("nbits4", "onnxruntime"):
                calls[LEVEL_4] = peers.onnxruntime_matmul_nbits(
                    data.x, data.packed, data.scales, None, 4, 32, data.out.copy(), args.threads, accuracy_level=4
                )
        t = {name: median(v) for name, v in interleaved_rounds(calls, rounds=args.rounds, budget_s=0.05).items()}
        base = t["NumPy float32"]
        cells = [f"{base / t[n]:.2f}x" if n in t else "-" for n in names]
        versus = [
            f"{t[LEVEL_4] / t[n]:.2f}" if LEVEL_4 in t and n in t else "-" for n in ("qbench Q4_0", "qbench Q8_0")
        ]
        print(f"| {shape} | " + " | ".join(cells + versus) + " |", flush=True)


if __name__ == "__main__":
    main()
