"""``qbench model FILE``: an ONNX model run end to end in ONNX Runtime as float32 and each quantized variant, and
every weight tensor of any model file through each format: size, accuracy, speed."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from qbench.cli.common import add_out, comma_list, fail, whole

HELP = "what quantizing a model buys on this CPU: the whole ONNX model run, and each weight tensor per format"


def _int_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition(",")
    try:
        pair = (int(low), int(high))
    except ValueError:
        pair = (0, 0)
    if not sep or pair[0] >= pair[1]:
        raise argparse.ArgumentTypeError(
            f"expected LOW,HIGH with LOW < HIGH (values drawn from [LOW, HIGH)), got {text!r}"
        )
    return pair


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    from qbench.model.variants import VARIANTS

    run = parser.add_argument_group("end-to-end run of an ONNX model (needs onnxruntime: pip install 'qbench[onnx]')")
    run.add_argument(
        "--run",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the model in ONNX Runtime as each variant (default: on for .onnx files)",
    )
    run.add_argument("--variants", type=comma_list, help=f"comma-separated: {', '.join(VARIANTS)} (default: all)")
    run.add_argument("--inputs", help=".npz with one array per graph input, a leading sample axis (default: random)")
    run.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a symbolic dimension's value (repeatable); an unnamed one as INPUT[AXIS]=VALUE",
    )
    run.add_argument("--samples", type=whole(1), default=8, help="random samples (default: %(default)s)")
    run.add_argument("--int-range", type=_int_range, help="LOW,HIGH for random integer inputs that index no table")
    run.add_argument("--seconds", type=float, default=1.0, help="time per latency measurement (default: %(default)s)")
    run.add_argument(
        "--timeout", type=float, default=600.0, help="seconds any one variant's step may take (default: %(default)s)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="an .onnx, .safetensors, .gguf or .npz file")
    parser.add_argument(
        "--formats",
        type=comma_list,
        help="comma-separated: float16, int8, uint8, int8-channel, int4-b32, int4-b128, Q8_0, Q4_0 (default: all)",
    )
    parser.add_argument(
        "--calibration",
        type=comma_list,
        help="per-tensor int8/uint8 calibration methods: minmax, percentile, entropy, mse (default: all)",
    )
    add_out(parser, None, "report folder (default: reports/model-<file name>)")
    parser.add_argument(
        "--time",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time each weight shape's GEMV and GEMM per format against float32 (default: on)",
    )
    parser.add_argument(
        "--peers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time the installed peers (ONNX Runtime, PyTorch) beside each format (default: on)",
    )
    parser.add_argument("--batch", type=whole(2), default=16, help="rows of the batched GEMM (default: %(default)s)")
    parser.add_argument("--threads", type=whole(1), help="threads for the scan and the timing (default: all cores)")
    parser.add_argument(
        "--channel-axis",
        type=int,
        help="output-channel axis of every tensor (default: per file type; see the README), e.g. -1 for (in, out)",
    )
    _add_run_arguments(parser)


def _end_to_end(args: argparse.Namespace, threads: int) -> tuple[object | None, list[str]]:
    """The planned run of an ONNX file (checked before any work), or None and why there is none."""
    import importlib.util

    from qbench.model import runtime

    if Path(args.path).suffix.lower() != ".onnx":
        return None, ["no runtime for this file type here: the answer is the kernel-level one below"]
    if not args.run:
        return None, []
    if importlib.util.find_spec("onnxruntime") is None:
        return None, ["onnxruntime is not installed (pip install 'qbench[onnx]'): the model was not run"]
    plan = runtime.plan(
        args.path,
        variants=args.variants,
        inputs=args.inputs,
        dims=args.dim,
        samples=args.samples,
        int_range=args.int_range,
        threads=sorted({1, threads}),
        seconds=args.seconds,
        timeout=args.timeout,
    )
    return plan, []


def execute(args: argparse.Namespace) -> int:
    import numba

    from qbench.measure.machine import describe
    from qbench.measure.timing import Ticker
    from qbench.model import scan as modelscan
    from qbench.model import speed as modeltime
    from qbench.model.files import ModelError, open_model
    from qbench.report.model import build_model_report, headline, size_text, terminal_summary, with_speedups

    cores = numba.config.NUMBA_NUM_THREADS
    if args.threads and args.threads > cores:
        return fail(f"--threads {args.threads} exceeds the {cores} threads Numba has on this machine", 2)
    threads = args.threads or cores
    numba.set_num_threads(threads)
    try:
        fmts = modelscan.formats(args.formats, args.calibration)
        plan, run_notes = _end_to_end(args, threads)
        model = open_model(args.path, args.channel_axis)
    except (ModelError, ValueError) as exc:
        return fail(str(exc), 2)
    run = None
    if plan is not None:
        from qbench.model import runtime

        print(f"{model.path.name}: running {len(plan.variants)} variant(s) in ONNX Runtime, threads {plan.threads}")
        for note in plan.notes:
            print(f"  {note}")
        try:
            run = runtime.run(plan, progress=lambda s: print(f"  {s}", flush=True))
        except ModelError as exc:
            model.close()
            return fail(str(exc), 2)
    with model:
        values = sum(t.size for t in model.tensors)
        print(
            f"{model.path.name}: {len(model.tensors)} weight tensors, {values:,} values "
            f"({size_text(sum(t.stored_bytes for t in model.tensors))} stored), {len(fmts)} formats, "
            f"{threads} thread(s)"
        )
        ticker = Ticker("tensors", len(model.tensors))
        try:
            result = modelscan.scan(
                model, fmts, progress=lambda done, total, t: ticker.step(done / total, t.name), parallel=threads > 1
            )
        except ModelError as exc:
            ticker.close()
            return fail(str(exc), 2)
        ticker.close()
        summary = modelscan.summarize(result, model)
        times = None
        counts = modeltime.shapes(model.tensors)
        if args.time and counts:
            variants = [f.timed_as for f in fmts if f.timed_as]
            peers = " and the installed peers" if args.peers else ""
            print(
                f"timing {len(counts)} weight shape(s), GEMV and {args.batch}-row GEMM, side by side with float32"
                + peers
            )
            times = modeltime.time_shapes(
                counts,
                variants,
                batch=args.batch,
                threads=threads,
                peers=args.peers,
                progress=lambda s: print(f"  {s}", flush=True),
            )
        summary = with_speedups(summary, fmts, times, args.batch)
    notes = run_notes + [f"skipped (NaN/inf values, kept in float32): {name}" for name in result.skipped]
    if args.time and not counts:
        notes.append("no tensor feeds a matrix product as far as the file says: nothing timed")
    info = describe()
    header = [
        ("model", f"{model.path.name} ({model.kind})"),
        ("weight tensors", f"{len(model.tensors)} ({values:,} values); {model.others} smaller tensors kept in float32"),
        ("CPU", f"{info.get('cpu', 'unknown')}, {', '.join(info.get('simd', []))}, {info.get('cores', '?')} cores"),
        ("threads", str(threads)),
        ("scan", f"{result.seconds:.1f} s, {result.rate:.3g} GB/s of float32 weights, {len(fmts)} formats"),
        (
            "memory",
            f"{size_text(result.peak_anon - result.anon_before)} at most beyond the "
            f"{size_text(result.anon_before)} before the scan (largest tensor as float32: "
            f"{size_text(result.largest_float32)}); peak resident {size_text(result.peak_rss)} with the file's "
            "mapped pages",
        ),
    ]
    out = Path(args.out or f"reports/model-{model.path.stem}")
    answer = _answer(run, plan, model.path.name, info) if run is not None else None
    page = build_model_report(
        out,
        title=f"qbench model {model.path.name}",
        header=header,
        summary=summary,
        frame=result.frame,
        times=times,
        notes=notes,
        runtime=answer,
    )
    if answer is not None:
        print()
        for line in [*answer["verdict"], answer["machine"], *answer["why"]]:
            print(textwrap.fill(line, width=100, subsequent_indent="  "))
    print()
    for line in terminal_summary(summary):
        print(line)
    print()
    for line in [*headline(summary), *notes]:
        print(textwrap.fill(line, width=100, subsequent_indent="  "))
    print()
    for key, text in header[4:6]:
        print(textwrap.fill(f"{key}: {text}", width=100, subsequent_indent="  "))
    print(f"report: {page}")
    return 0


def _answer(run: dict, plan: object, name: str, info: dict) -> dict:
    """``model.json``'s document: the end-to-end results with their verdict, the why and the machine."""
    import platform

    import onnxruntime

    from qbench.report import runtime as rt

    return {
        "model": name,
        "machine_name": platform.node(),
        "machine_info": info,
        "machine": rt.machine_line(info, onnxruntime.__version__),
        "onnxruntime": onnxruntime.__version__,
        "threads": plan.threads,
        "inputs": {k: list(v.shape) for k, v in plan.inputs.items()},
        "notes": plan.notes,
        "verdict": rt.verdict(run, plan.threads),
        "why": rt.why(run),
        "variants": run,
    }
