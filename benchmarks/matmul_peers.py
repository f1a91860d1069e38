"""The int8 linear layer against its peers, every M of one large layer, side by side in one process.

    python -m benchmarks.matmul_peers [--threads 1] [--rounds 7] [--k 4096] [--n 4096] [--m 1,2,4,8,16,64,256]

For each M: qbench's ``matmul_integer`` on packed weights and on unpacked C-ordered (K, N) weights, ONNX Runtime's
``MatMulInteger`` (weights as constant initializers, which it prepacks), PyTorch's ``linear_dynamic`` and
qbench's ``dynamic_quantize_matmul`` (packed), NumPy float32 (BLAS); interleaved rounds, medians. It prints a
Markdown table: each implementation over NumPy float32, qbench over the faster peer, and qbench's share of the
measured peak of its micro-kernel (GEMM) or of the float32 read ceiling at the weights' size (GEMV). The data,
packing and peers are the registry's (:mod:`qbench.cases.matmul`), so the figures are those the suite measures.
"""

from __future__ import annotations

import argparse

import numba

from benchmarks.benchmarks import _common
from qbench import cases
from qbench.cases import Buffers
from qbench.cpu import describe_cpu
from qbench.kernels.isa import choose
from qbench.measure.timing import interleaved_rounds, median

IMPLS = {
    "qbench packed": ("integer", "qbench"),
    "qbench (K, N) unpacked": ("integer_kn", "qbench"),
    "ONNX Runtime MatMulInteger": ("integer", "onnxruntime"),
    "qbench dynamic": ("dynamic", "qbench"),
    "ONNX Runtime dynamic": ("dynamic", "onnxruntime"),
    "PyTorch dynamic": ("dynamic", "torch"),
    "NumPy float32": ("float32", "numpy"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--k", type=int, default=4096)
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--m", default="1,2,4,8,16,64,256")
    args = parser.parse_args()
    numba.set_num_threads(args.threads)
    cpu = describe_cpu()
    path = choose()
    print(
        f"{cpu['cpu']}, {', '.join(cpu['simd'])}, {cpu['cores']} cores; path {path and path.name}; "
        f"{args.threads} thread(s); medians of {args.rounds} interleaved rounds\n"
    )
    buf = Buffers(seed=1)
    peak_call, peak_ops = cases.matmul.peak_call("integer", buf)

    print(
        "| M | " + " | ".join(f"{name} / NumPy f32" for name in IMPLS) + " | qbench packed / faster peer "
        "| packed (K,N) / packed | share of peak (GEMM) or read ceiling (GEMV) |"
    )
    print("|" + "---|" * (len(IMPLS) + 4))
    for m in (int(v) for v in args.m.split(",")):
        shape = f"{m}x{args.k}x{args.n}"
        calls = {}
        for name, (variant, impl) in IMPLS.items():
            try:
                run, data = cases.MATMUL.build(variant, shape, impl, args.threads, Buffers(seed=1))
                cases.MATMUL.check(data, impl, run())
                calls[name] = run
            except NotImplementedError as exc:
                print(f"<!-- {name}: {exc} -->")
        ceiling = _common.prepare("read", "float32", args.k * args.n // 4, args.threads, "qbench")
        calls["peak"] = peak_call
        calls["read"] = ceiling.run
        t = {name: median(v) for name, v in interleaved_rounds(calls, rounds=args.rounds, budget_s=0.05).items()}
        base = t["NumPy float32"]
        cells = [f"{base / t[n]:.2f}x" if n in t else "-" for n in IMPLS]
        peers = [t[n] for n in ("ONNX Runtime MatMulInteger", "PyTorch dynamic") if n in t]
        versus = f"{min(peers) / t['qbench packed']:.2f}" if peers else "-"
        unpacked = f"{t['qbench packed'] / t['qbench (K, N) unpacked']:.2f}"
        if m == 1:  # weight bytes per second over the read probe's bytes per second, same bytes
            share = (args.k * args.n / t["qbench packed"]) / (ceiling.nbytes / t["read"])
        else:
            share = (2 * m * args.k * args.n / t["qbench packed"]) / (peak_ops / t["peak"])
        print(f"| {m} | " + " | ".join(cells) + f" | {versus} | {unpacked} | {share:.2f} |", flush=True)


if __name__ == "__main__":
    main()
