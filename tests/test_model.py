"""qbench model: readers, per-tensor numbers against the reference functions, bad files, the command end to end.

Every model is made here (onnx.helper, safetensors, gguf.GGUFWriter, numpy.savez); nothing is fetched.
"""

from __future__ import annotations

import importlib.util
import io
import math
from types import SimpleNamespace

import ml_dtypes
import numpy as np
import pandas as pd
import pytest

from qbench import cli, reference
from qbench.kernels.isa import allowed
from qbench.measure.timing import Ticker
from qbench.model import scan as modelscan
from qbench.model import synthetic
from qbench.model.files import ModelError, open_model, rows_view
from qbench.ops import metrics
from qbench.ops.calibrate import calibrate

onnx = pytest.importorskip("onnx")
safetensors_numpy = pytest.importorskip("safetensors.numpy")
gguf = pytest.importorskip("gguf")

RNG = np.random.default_rng(7)
W1 = RNG.standard_normal((64, 96)).astype(np.float32)  # MatMul B: (K, N)
W2 = RNG.standard_normal((48, 96)).astype(np.float32)  # Gemm B with transB=1: (N, K)
W2[3, 5] = 9.0  # an outlier: per-tensor calibrations differ from each other
B1 = RNG.standard_normal(96).astype(np.float32)


def _mlp(path, external: bool = False):
    """x (1, 64) -> MatMul W1 -> Add B1 -> Relu -> Gemm(W2, transB=1) -> y (1, 48)."""
    return synthetic.onnx_mlp(path, [(W1, B1), (W2, None)], external)


def _gguf(path):
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("blk.0.ffn_up.weight", W2)
    for kind in ("Q8_0", "Q4_0"):
        q = gguf.quants.quantize(W2, getattr(gguf.GGMLQuantizationType, kind))
        writer.add_tensor(f"blk.0.{kind}.weight", q, raw_dtype=getattr(gguf.GGMLQuantizationType, kind))
    writer.add_tensor("output_norm.weight", B1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _safetensors(path):
    safetensors_numpy.save_file(
        {
            "layers.0.w": W2,
            "layers.1.w": np.ascontiguousarray(W1.T, dtype=np.float16),
            "layers.2.w": W2.astype(ml_dtypes.bfloat16),
            "layers.0.b": B1,
        },
        str(path),
    )
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    np.savez(d / "m.npz", w=W2, b=B1)
    (d / "ext").mkdir()
    return {
        "onnx": _mlp(d / "mlp.onnx"),
        "external": _mlp(d / "ext" / "mlp.onnx", external=True),
        "safetensors": _safetensors(d / "m.safetensors"),
        "gguf": _gguf(d / "m.gguf"),
        "npz": d / "m.npz",
    }


# ---- readers -------------------------------------------------------------------------------------------------------


def test_onnx_channel_axis_comes_from_the_consumer(files):
    for key in ("onnx", "external"):
        with open_model(files[key]) as m:
            by = {t.name: t for t in m.tensors}
            assert set(by) == {"W1", "W2"} and m.others == 1 and m.other_values == 96
            assert by["W1"].channel_axis == 1 and (by["W1"].rows, by["W1"].cols) == (96, 64)  # MatMul B (K, N)
            assert by["W2"].channel_axis == 0 and (by["W2"].rows, by["W2"].cols) == (48, 96)  # Gemm transB=1
            assert by["W1"].matmul and by["W2"].matmul
            np.testing.assert_array_equal(m.load(by["W1"]), W1)
            np.testing.assert_array_equal(rows_view(m.load(by["W1"]), 1), W1.T)


def test_safetensors_reads_float32_float16_and_bfloat16_exactly(files):
    with open_model(files["safetensors"]) as m:
        by = {t.name: t for t in m.tensors}
        assert [by[n].stored for n in ("layers.0.w", "layers.1.w", "layers.2.w")] == ["float32", "float16", "bfloat16"]
        np.testing.assert_array_equal(m.load(by["layers.1.w"]), W1.T.astype(np.float16).astype(np.float32))
        np.testing.assert_array_equal(m.load(by["layers.2.w"]), W2.astype(ml_dtypes.bfloat16).astype(np.float32))
        assert by["layers.2.w"].stored_bytes == W2.size * 2 and m.others == 1


def test_gguf_quantized_tensors_are_dequantized_as_gguf_does(files):
    with open_model(files["gguf"]) as m:
        by = {t.name: t for t in m.tensors}
        for kind in ("Q8_0", "Q4_0"):
            t = by[f"blk.0.{kind}.weight"]
            blocks = gguf.quants.quantize(W2, getattr(gguf.GGMLQuantizationType, kind))
            assert t.stored == kind and t.stored_bytes == blocks.nbytes and t.shape == W2.shape
            want = gguf.quants.dequantize(blocks, getattr(gguf.GGMLQuantizationType, kind))
            np.testing.assert_array_equal(m.load(t), want)
        np.testing.assert_array_equal(m.load(by["blk.0.ffn_up.weight"]), W2)


def test_channel_axis_override(files):
    with open_model(files["npz"], channel_axis=-1) as m:
        assert m.tensors[0].channel_axis == 1 and m.tensors[0].rows == 96
    with pytest.raises(ModelError, match="channel axis 2 is out of range"):
        open_model(files["npz"], channel_axis=2)


# ---- the numbers of one tensor, against the reference ----------------------------------------------------------


@pytest.fixture(scope="module")
def gemm_rows(files):
    with open_model(files["onnx"]) as m:
        result = modelscan.scan(m, modelscan.formats())
    frame = result.frame
    return frame[frame["tensor"] == "W2"].set_index("format"), result


def _reference_round_trip(fmt_name: str, w: np.ndarray) -> tuple[np.ndarray, int]:
    """The round trip and bytes of ``w`` (rows, cols) through the NumPy reference, on the whole tensor at once."""
    if fmt_name in ("Q8_0", "Q4_0"):
        blocks = reference.ggml_quantize(w, fmt_name)
        return reference.ggml_dequantize(blocks, fmt_name), blocks.nbytes
    if fmt_name == "float16":
        return w.astype(np.float16).astype(np.float32), w.astype(np.float16).nbytes
    if fmt_name == "int8 channel":
        p = calibrate(w, "int8", axis=0, symmetric=True)
        return reference.dequantize(reference.quantize(w, p), p), w.size + p.scale.nbytes + p.scale.size
    if fmt_name.startswith("int4"):
        from qbench.ops.blocks import calibrate_blocks

        p = calibrate_blocks(w, "int4", axis=1, block_size=int(fmt_name[6:]))
        q = reference.quantize(w, p)
        packed = reference.pack_int4(q)
        return reference.dequantize(q, p), packed.nbytes + p.scale.nbytes
    dtype, method = fmt_name.split()
    flat = w.ravel()
    p = calibrate(flat, dtype, method=method, symmetric=dtype == "int8")  # the whole tensor: below the sample cap
    return reference.dequantize(reference.quantize(w, p), p), w.size + p.scale.nbytes + 1


@pytest.mark.parametrize("fmt_name", [f.name for f in modelscan.formats()])
def test_every_number_of_a_tensor_matches_the_reference(gemm_rows, fmt_name):
    rows, _ = gemm_rows
    row = rows.loc[fmt_name]
    back, nbytes = _reference_round_trip(fmt_name, W2)
    assert row["bytes"] == nbytes and row["bits"] == 8 * nbytes / W2.size
    # max |error| is exact whatever the order of the sums; the SQNR's float64 sums differ in order only
    assert row["max_abs_error"] == metrics.max_abs_error(W2, back)
    assert row["sqnr_db"] == pytest.approx(metrics.sqnr_db(W2, back), rel=W2.size * 2.0**-50)
    assert row["status"] == "ok" and (row["rows"], row["cols"]) == W2.shape


def test_the_outlier_separates_the_calibrations(gemm_rows):
    rows, _ = gemm_rows
    assert rows.loc["int8 minmax", "max_abs_error"] < rows.loc["int8 percentile", "max_abs_error"]
    assert rows.loc["int8 channel", "sqnr_db"] > rows.loc["int8 minmax", "sqnr_db"]


def test_summary_totals(gemm_rows, files):
    _, result = gemm_rows
    with open_model(files["onnx"]) as m:
        summary = modelscan.summarize(result, m).set_index("format")
    values = W1.size + W2.size
    assert summary.loc["float32", "bytes"] == 4 * (values + B1.size)
    assert "as stored" not in summary.index  # a float32 file: the float32 row says it
    q = result.frame[(result.frame["format"] == "Q4_0")]
    assert summary.loc["Q4_0", "bytes"] == q["bytes"].sum() + 4 * B1.size
    sq = q.set_index("tensor")["sqnr_db"]
    want = (sq["W1"] * W1.size + sq["W2"] * W2.size) / values
    assert summary.loc["Q4_0", "sqnr_db"] == pytest.approx(want)
    assert summary.loc["Q4_0", "x_float32"] == pytest.approx(
        summary.loc["float32", "bytes"] / summary.loc["Q4_0", "bytes"]
    )
    assert result.largest_float32 == 4 * W1.size


def test_large_tensors_calibrate_on_every_kth_value(monkeypatch):
    monkeypatch.setattr(modelscan, "CALIBRATION_SAMPLE", 1000)
    fmt = next(f for f in modelscan.formats(["int8"], ["percentile"]))
    data = modelscan.calibration_data(fmt, W2)
    np.testing.assert_array_equal(data, W2.ravel()[:: math.ceil(W2.size / 1000)])
    minmax = next(f for f in modelscan.formats(["int8"], ["minmax"]))
    assert modelscan.tensor_params(minmax, W2) == calibrate(W2, "int8", symmetric=True)


def test_rows_not_a_multiple_of_the_block_are_not_stored_in_ggml(tmp_path):
    np.savez(tmp_path / "odd.npz", w=RNG.standard_normal((8, 40)).astype(np.float32))
    with open_model(tmp_path / "odd.npz") as m:
        result = modelscan.scan(m, modelscan.formats(["Q4_0", "int4-b32"]))
        summary = modelscan.summarize(result, m).set_index("format")
    rows = result.frame.set_index("format")
    assert rows.loc["Q4_0", "status"].startswith("rows of 40 values are not a multiple")
    assert rows.loc["int4 b32", "status"] == "ok"  # ONNX blocks allow a short last block
    assert summary.loc["Q4_0", "bytes"] == 2 * 8 * 40 and summary.loc["Q4_0", "not_stored"] == 1


def test_error_sums_match_the_float64_metrics():
    x = RNG.standard_normal((37, 129)).astype(np.float32)
    y = (x + RNG.standard_normal(x.shape).astype(np.float32) * 0.01).astype(np.float32)
    for parallel in (False, True):
        e = metrics.ErrorSums()
        e.add(x[:20], y[:20], parallel=parallel)
        e.add(x[20:], y[20:], parallel=parallel)
        assert e.worst == metrics.max_abs_error(x, y)
        assert e.sqnr_db == pytest.approx(metrics.sqnr_db(x, y), rel=x.size * 2.0**-50)
    assert metrics.ErrorSums().sqnr_db == math.inf  # nothing added: no noise


# ---- bad input -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["onnx", "safetensors", "gguf", "npz"])
def test_a_truncated_file_is_a_clear_error(files, tmp_path, key):
    src = files[key]
    bad = tmp_path / f"bad{src.suffix}"
    data = src.read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError, match=rf"{bad}: (not a readable|cannot read tensor)"):
        with open_model(bad) as m:
            for t in m.tensors:
                m.load(t)


def test_cli_reports_a_corrupt_file_in_one_line(files, tmp_path, capsys):
    bad = tmp_path / "junk.gguf"
    bad.write_bytes(b"GGUF" + bytes(range(50)))
    assert cli.main(["model", str(bad), "--no-time", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"qbench: error: {bad}: not a readable GGUF file") and "Traceback" not in err


def test_missing_unknown_empty_and_missing_external_data(files, tmp_path):
    with pytest.raises(ModelError, match="no such file"):
        open_model(tmp_path / "none.onnx")
    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(ModelError, match=r"unknown model format '.pt'; accepted: .onnx, .safetensors, .gguf, .npz"):
        open_model(tmp_path / "m.pt")
    np.savez(tmp_path / "bias.npz", b=B1)
    with pytest.raises(ModelError, match="no float weight tensor of two or more dimensions"):
        open_model(tmp_path / "bias.npz")
    ext = tmp_path / "ext"
    ext.mkdir()
    _mlp(ext / "mlp.onnx", external=True)
    (ext / "mlp.data").unlink()  # onnx_mlp names it after the model
    with open_model(ext / "mlp.onnx") as m, pytest.raises(ModelError, match="external data of tensor 'W1' is missing"):
        m.load(m.tensors[0])


def test_unknown_format_and_method_are_usage_errors(files, capsys):
    assert cli.main(["model", str(files["npz"]), "--formats", "int3"]) == 2
    assert "unknown format(s) int3; accepted: float16, int8," in capsys.readouterr().err
    assert cli.main(["model", str(files["npz"]), "--calibration", "magic"]) == 2
    assert "unknown calibration method(s) magic" in capsys.readouterr().err
    assert cli.main(["model", str(files["npz"]), "--threads", "999"]) == 2
    assert "--threads 999 exceeds the" in capsys.readouterr().err


def test_a_tensor_with_nan_is_reported_and_skipped(tmp_path, capsys):
    bad = W2.copy()
    bad[0, 0], bad[1, 1] = np.nan, np.inf
    np.savez(tmp_path / "nan.npz", good=W1, bad=bad)
    out = tmp_path / "o"
    assert (
        cli.main(["model", str(tmp_path / "nan.npz"), "--no-time", "--formats", "int8-channel", "--out", str(out)]) == 0
    )
    text = capsys.readouterr().out
    assert "skipped (NaN/inf values, kept in float32): bad (1 NaN, 1 inf)" in text
    frame = pd.read_csv(out / "tensors.csv").set_index(["tensor", "format"])
    assert frame.loc[("bad", "int8 channel"), "status"] == "skipped: 1 NaN and 1 inf values"
    assert frame.loc[("good", "int8 channel"), "status"] == "ok"


# ---- the command ---------------------------------------------------------------------------------------------------


def test_model_command_writes_the_page_and_a_summary_that_fits(files, tmp_path, capsys, monkeypatch):
    from qbench.model import speed as modeltime

    monkeypatch.setattr(modeltime, "last_level_cache", lambda: 64 << 10)  # a few copies of these small layers
    out = tmp_path / "report"
    argv = ["model", str(files["onnx"]), "--out", str(out), "--batch", "4", "--threads", "1", "--no-run"]
    assert cli.main(argv + ["--formats", "int8,int8-channel,int4-b32,Q8_0,Q4_0", "--calibration", "minmax"]) == 0
    text = capsys.readouterr().out
    table = text[text.index("format ") : text.index("report:")]  # the report's path is the user's
    assert all(len(line) <= 100 for line in table.splitlines()), table
    assert "Q4_0" in table and "GEMV" in table and "x" in table
    html = (out / "index.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and '<img src="tradeoff.png"' not in html
    csv = pd.read_csv(out / "tensors.csv")
    assert set(csv["tensor"]) == {"W1", "W2"} and len(csv) == 2 * 6  # as stored + 5 formats each
    times = pd.read_csv(out / "times.csv")
    assert set(times["shape"]) == {"96x64", "48x96"} and set(times["m"]) == {1, 4}
    batched = set(times.loc[times["m"] == 4, "variant"])
    vnni = any(p.vnni for p in allowed())  # int4 blocks run with int8 activations, on VNNI
    assert batched == {"float32", "dynamic", "Q8_0", "Q4_0"} | ({"int4_b32"} if vnni else set())
    md = (out / "report.md").read_text()
    assert md.startswith("# qbench model mlp.onnx\n\n## What quantizing this model's weights buys, format by format")
    summary = pd.read_csv(out / "tensors.csv")  # the headline's Q4_0 line says the summary's numbers
    q4 = summary[summary["format"] == "Q4_0"]
    want = 4 * (W1.size + W2.size + B1.size) / (q4["bytes"].sum() + 4 * B1.size)
    assert f"- Q4_0: {want:.2f}x less memory than float32 (4.50 bits a weight), " in md
    assert "- int8 minmax: " in md and "- int8 channel: " in md and "faster per token (GEMV)" in md
    fastest = next(line for line in md.splitlines() if line.startswith("- fastest on this machine: "))
    assert "per token (GEMV) " in fastest and "batched (GEMM) " in fastest, fastest
    if importlib.util.find_spec("onnxruntime") is not None:  # the best peer's figure beside each format
        peers = times[times["impl"] == "onnxruntime"]
        assert {"dynamic", "Q4_0"} <= set(peers["variant"]) and "int4_b32" in set(peers["runs"])
        assert "p.GEMV" in table and "ONNX Runtime DynamicQuantizeMatMul: " in md


def test_the_best_peer_stands_beside_a_format_only_over_the_same_shapes():
    from qbench.model.speed import best_peers, model_speedup
    from qbench.report.model import headline, with_speedups

    def row(shape, tensors, impl, variant, runs, seconds):
        return dict(shape=shape, tensors=tensors, m=1, variant=variant, impl=impl, runs=runs, seconds=seconds)

    times = pd.DataFrame(
        [
            row("64x64", 3, "numpy", "float32", "float32", 6.0),
            row("32x64", 1, "numpy", "float32", "float32", 2.0),
            row("64x64", 3, "qbench", "Q4_0", "Q4_0", 2.0),
            row("32x64", 1, "qbench", "Q4_0", "Q4_0", 1.0),
            row("64x64", 3, "onnxruntime", "Q4_0", "int4_b32", 3.0),
            row("32x64", 1, "onnxruntime", "Q4_0", "int4_b32", 0.5),
            row("64x64", 3, "qbench", "dynamic", "dynamic", 3.0),
            row("32x64", 1, "qbench", "dynamic", "dynamic", 1.0),
            row("64x64", 3, "torch", "dynamic", "dynamic", 1.0),  # one shape of two: no sum to compare
        ]
    )
    total = 3 * 6.0 + 2.0
    assert model_speedup(times, 1)["Q4_0"] == pytest.approx((total / (3 * 2.0 + 1.0), 1.0))
    assert model_speedup(times, 1, "onnxruntime")["Q4_0"] == pytest.approx((total / (3 * 3.0 + 0.5), 1.0))
    best = best_peers(times, 1)
    assert set(best) == {"Q4_0"} and best["Q4_0"][1:] == ("onnxruntime", "int4_b32")
    formats = [SimpleNamespace(name="Q4_0", timed_as="Q4_0"), SimpleNamespace(name="int8", timed_as="dynamic")]
    summary = pd.DataFrame(
        {"format": ["Q4_0", "int8"], "x_float32": [7.1, 4.0], "bits": [4.5, 8.0], "sqnr_db": [19.0, 40.0]}
    ).assign(worst_db=lambda d: d["sqnr_db"])
    lines = headline(with_speedups(summary, formats, times.assign(m=1), batch=16))
    q4 = next(line for line in lines if line.startswith("Q4_0: "))
    want = total / (3 * 3.0 + 0.5)
    assert q4.endswith(f"; ONNX Runtime MatMulNBits 4-bit, accuracy level 4, blocks of 32: {want:.2f}x per token")
    assert "PyTorch" not in " ".join(lines)


def test_ticker_prints_the_first_item_and_each_tenth_off_a_terminal():
    stream = io.StringIO()
    ticker = Ticker("tensors", 20, stream)
    for i in range(20):
        ticker.step((i + 1) / 20, f"t{i}")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11 and lines[-1].startswith("[100.0%] 20/20 tensors") and "done" in lines[-1]


def test_synthetic_llama_has_pytorch_names_and_layout(tmp_path):
    path = synthetic.llama_safetensors(
        tmp_path / "tiny.safetensors", hidden=64, intermediate=96, layers=2, kv=32, vocab=128
    )
    with open_model(path) as m:
        by = {t.name: t for t in m.tensors}
        assert len(by) == 1 + 7 * 2 + 1 and m.others == 2 * 2 + 1
        assert by["model.layers.1.mlp.down_proj.weight"].shape == (64, 96)  # (out, in)
        assert by["model.layers.0.self_attn.k_proj.weight"].rows == 32
        assert not by["model.embed_tokens.weight"].matmul and by["lm_head.weight"].matmul
        assert all(t.stored == "bfloat16" for t in m.tensors)


def test_timed_weights_together_exceed_the_cache_twice():
    from qbench.model import speed as modeltime
    from qbench.model.speed import copies, rotating

    assert copies(1 << 20, 32 << 20) == 64 and copies(100 << 20, 32 << 20) == 1 and copies(3 << 20, 4 << 20) == 3
    assert copies(1, 32 << 20) == modeltime.MAX_COPIES
    seen = []
    call = rotating([lambda i=i: seen.append(i) for i in range(3)])
    for _ in range(7):
        call()
    assert seen == [0, 1, 2, 0, 1, 2, 0]


def test_float16_rounding_is_numpys_on_random_bit_patterns_and_every_edge():
    """The scan's float16 round trip (checked once on every finite float32) against NumPy's astype: 4 million
    random bit patterns, the overflow threshold, the subnormal range and its ties, signed zeros; one value a row
    (each error on its own, overflow to inf included) and 64 a row of float16's range (the lanes' path)."""
    from qbench.kernels import metrics as k

    bits = np.random.default_rng(11).integers(0, 2**32, 1 << 22, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    edges = [65504.0, 65519.996, 65520.0, 65536.0, 2.0**-14, 2.0**-14 * (1 - 2**-12), 2.0**-24, 2.0**-25, 3 * 2.0**-25]
    edges += [2.0**-25 * (1 + 2**-10), 0.0, 1.0 + 2**-11, 1.0 + 3 * 2**-11, 2049.0, 2051.0]
    x = np.concatenate([np.array(edges, np.float32), -np.array(edges, np.float32), x[np.isfinite(x)]])
    in_range = x[np.abs(x) < 65520]
    in_range = in_range[: in_range.size // 64 * 64]
    for rows in (x.reshape(-1, 1), in_range.reshape(-1, 64)):
        noise, worst = np.empty(rows.shape[0]), np.empty(rows.shape[0])
        k.half_error_rows(rows, noise, worst)
        with np.errstate(over="ignore", invalid="ignore"):
            d = rows.astype(np.float64) - rows.astype(np.float16).astype(np.float64)
            np.testing.assert_array_equal(worst, np.abs(d).max(axis=1))
            np.testing.assert_allclose(noise, (d * d).sum(axis=1), rtol=1e-12)
