"""qbench model's end-to-end run: small models of real structure, built with onnx.helper, through ONNX Runtime."""

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("onnx", reason="onnx is not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from qbench.model import inputs as model_inputs  # noqa: E402
from qbench.model import runtime  # noqa: E402
from qbench.model.files import ModelError, open_model  # noqa: E402
from qbench.report import runtime as rt  # noqa: E402

RNG = np.random.default_rng(7)
FAST = {"seconds": 0.02}
#: How a verdict line says its speed at 1 thread: (ratio within the noise) or (ratio, faster|slower).
SPEED_WORDS = r"[^:]+: (?:(?:as fast|no clear difference) \(([\d.]+)x[;)][^,]*|([\d.]+)x (faster|slower)) at 1 thread"


def _save(path, nodes, inputs, outputs, inits, opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _linear(path, k=96, n=40, batch="batch"):
    """x (batch, k) @ W (k, n) + b: one MatMul, whose dynamic-int8 error has a bound from its scales."""
    w = RNG.standard_normal((k, n)).astype(np.float32)
    b = RNG.standard_normal(n).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "B"], ["y"])]
    return _save(
        path,
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, n])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    ), w


def _convnet(path):
    """Conv -> Relu -> GlobalAveragePool -> Flatten -> MatMul: ten class scores."""
    wc = (RNG.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)
    wf = (RNG.standard_normal((8, 10)) * 0.3).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "Wc"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "Wf"], ["y"]),
    ]
    return _save(
        path,
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(wc, "Wc"), numpy_helper.from_array(wf, "Wf")],
    )


def _with_if(path):
    """The weights live in the branches of an If, as Constant nodes (as exported audio models keep them)."""

    def branch(name, scale):
        w = (RNG.standard_normal((32, 16)) * scale).astype(np.float32)
        const = helper.make_node("Constant", [], [f"{name}_w"], value=numpy_helper.from_array(w, f"{name}_w"))
        mm = helper.make_node("MatMul", ["x", f"{name}_w"], [f"{name}_y"])
        out = helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, [1, 16])
        return helper.make_graph([const, mm], name, [], [out])

    node = helper.make_node("If", ["flag"], ["y"], then_branch=branch("then", 1.0), else_branch=branch("else", 0.5))
    return _save(
        path,
        [node],
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])],
        [],
    )


def _tokens(path, vocab=50, width=24):
    """int64 token ids -> Gather from an embedding table -> MatMul; ids at or past ``vocab`` would fail the run."""
    table = RNG.standard_normal((vocab, width)).astype(np.float32)
    w = RNG.standard_normal((width, 8)).astype(np.float32)
    nodes = [helper.make_node("Gather", ["E", "ids"], ["e"]), helper.make_node("MatMul", ["e", "W"], ["y"])]
    return _save(
        path,
        nodes,
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, "seq"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "seq", 8])],
        [numpy_helper.from_array(table, "E"), numpy_helper.from_array(w, "W")],
    )


def test_dynamic_int8_of_a_linear_layer_is_within_its_quantization_bound_and_sizes_are_exact(tmp_path):
    path, w = _linear(tmp_path / "linear.onnx")
    plan = runtime.plan(path, variants=["dynamic-int8"], samples=4, **FAST)
    assert any("batch axis 'batch' = 1" in n for n in plan.notes)
    res = runtime.run(plan, progress=lambda s: None)
    f32, dyn = res["float32"], res["dynamic-int8"]
    assert f32["bytes"] == path.stat().st_size and f32["quantized"] == 0
    assert dyn["quantized"] == 1 and dyn["bytes"] < f32["bytes"] / 2  # W (96 x 40) in int8; the bias stays float
    # |x w - x^ w^| <= |x| s_w / 2 + s_x / 2 |w^| summed over k, with s_x = range of x (0 included) / 255 (uint8,
    # DynamicQuantizeLinear) and s_w <= 2 max|W| / 254 (symmetric int8, per tensor: the loosest ONNX Runtime uses).
    x = plan.inputs["x"][:, 0, :]
    s_x = (np.maximum(x.max(axis=1), 0) - np.minimum(x.min(axis=1), 0)) / 255
    s_w = 2 * np.abs(w).max() / 254
    w_hat = np.abs(w) + s_w / 2
    bound = (np.abs(x).sum(axis=1) * s_w / 2)[:, None] + (s_x / 2)[:, None] * w_hat.sum(axis=0)[None, :]
    assert dyn["fidelity"]["y"]["max_abs"] <= bound.max() * (1 + 1e-5)
    assert dyn["fidelity"]["y"]["max_abs"] > 0  # it did quantize
    assert set(dyn["throughput"]) == {str(b) for b in runtime.BATCHES}  # the batch axis is free


def test_the_verdict_says_the_measured_ratios(tmp_path):
    path = _convnet(tmp_path / "conv.onnx")
    plan = runtime.plan(path, variants=["dynamic-int8", "static-int8-minmax"], samples=4, threads=[1, 2], **FAST)
    res = runtime.run(plan, progress=lambda s: None)
    lines = rt.verdict(res, plan.threads)
    assert len(lines) == 2
    for line, name in zip(lines, ["dynamic-int8", "static-int8-minmax"], strict=True):
        entry = res[name]
        assert "error" not in entry, entry
        want = entry["baseline_latency"]["1"]["median_s"] / entry["latency"]["1"]["median_s"]
        said = re.match(SPEED_WORDS, line)
        value = float(said.group(1) or said.group(2))
        value = 1 / value if said.group(3) == "slower" else value
        assert value == pytest.approx(want, rel=0.01), line
        assert f"{res['float32']['bytes'] / entry['bytes']:.2f}x smaller" in line
        assert "top-1" in line  # ten class scores
    static = res["static-int8-minmax"]
    assert static["quantized"] == 2 and static["divergence"], static.get("divergence_error")
    assert {"Conv", "MatMul"} & {n["op"] for n in static["divergence"]}
    assert "QLinearConv" in static["profile_us"] or "ConvInteger" in res["dynamic-int8"]["profile_us"]
    table = rt.tidy(res)
    assert set(table["variant"]) == {"float32", "dynamic-int8", "static-int8-minmax"}
    assert (table[table["metric"] == "size"]["unit"] == "bytes").all()


def test_weights_inside_if_branches_are_found_and_quantized(tmp_path):
    path = _with_if(tmp_path / "if.onnx")
    with open_model(path) as model:
        assert sorted(t.name for t in model.tensors) == ["else_w", "then_w"]
        assert all(t.matmul and t.channel_axis == 1 for t in model.tensors)
    plan = runtime.plan(path, variants=["dynamic-int8"], samples=2, **FAST)
    res = runtime.run(plan, progress=lambda s: None)
    assert res["dynamic-int8"]["quantized"] == 2, res["dynamic-int8"]
    assert res["dynamic-int8"]["fidelity"]["y"]["sqnr_db"] > 30


def test_token_ids_stay_below_the_vocabulary_and_open_dimensions_are_refused(tmp_path):
    path = _tokens(tmp_path / "tokens.onnx", vocab=50)
    with pytest.raises(ModelError, match=r"seq \(axis 1 of input 'ids'\).*--dim NAME=VALUE"):
        runtime.plan(path)
    with pytest.raises(ModelError, match="names no dimension.*bogus"):
        runtime.plan(path, dims=["seq=4", "bogus=2"])
    with pytest.raises(ModelError, match="expected NAME=VALUE"):
        runtime.plan(path, dims=["seq=0"])
    plan = runtime.plan(path, dims=["seq=300"], variants=["dynamic-int8"], samples=3, **FAST)
    ids = plan.inputs["ids"]
    assert ids.shape == (3, 1, 300) and ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < 50
    res = runtime.run(plan, progress=lambda s: None)
    assert "error" not in res["float32"] and res["float32"]["fidelity"] == {}
    assert res["dynamic-int8"]["fidelity"]["y"]["sqnr_db"] > 25


def test_inputs_from_a_file_are_checked_against_the_graph(tmp_path):
    path, _ = _linear(tmp_path / "linear.onnx")
    specs = model_inputs.graph_inputs(onnx.load(str(path)))
    good = tmp_path / "good.npz"
    np.savez(good, x=np.ones((5, 2, 96), np.float32))
    assert model_inputs.load_inputs(good, specs)["x"].shape == (5, 2, 96)
    for name, arrays, message in [
        ("names", {"z": np.ones((1, 1, 96), np.float32)}, r"holds \['z'\], the model's inputs are \['x'\]"),
        ("dtype", {"x": np.ones((1, 1, 96), np.float64)}, "is float64, the model takes float32"),
        ("size", {"x": np.ones((1, 1, 95), np.float32)}, "axis 1 is 95, not 96"),
        ("rank", {"x": np.ones((1, 96), np.float32)}, "expected a sample axis"),
    ]:
        bad = tmp_path / f"{name}.npz"
        np.savez(bad, **arrays)
        with pytest.raises(ModelError, match=message):
            model_inputs.load_inputs(bad, specs)


def test_a_failing_step_is_reported_with_its_message(tmp_path):
    found = runtime._job(
        tmp_path,
        "measure",
        60,
        variant="x",
        model=str(tmp_path / "missing.onnx"),
        inputs=str(tmp_path / "none.npz"),
        outputs="",
        threads=[1],
        batches=[],
        seconds=0.01,
        rounds=1,
    )
    assert "error" in found and "none.npz" in found["error"]
    with pytest.raises(ModelError, match="ran past --timeout 0.001 s"):
        runtime._job(
            tmp_path,
            "measure",
            0.001,
            variant="x",
            model="",
            inputs="",
            outputs="",
            threads=[1],
            batches=[],
            seconds=0.01,
            rounds=1,
        )


def test_the_command_leads_with_the_verdict_and_writes_model_json(tmp_path):
    path = _convnet(tmp_path / "conv.onnx")
    out = tmp_path / "report"
    cmd = [
        sys.executable,
        "-m",
        "qbench",
        "model",
        str(path),
        "--variants",
        "int4-b32",
        "--formats",
        "int8,Q8_0",
        "--calibration",
        "minmax",
        "--no-time",
        "--seconds",
        "0.02",
        "--out",
        str(out),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout
    verdict = text.index("4-bit b32: ")
    assert verdict < text.index("format ") and "AVX2" in text[verdict:]  # the verdict, then the machine, then the scan
    doc = json.loads((out / "model.json").read_text())
    assert doc["verdict"][0].startswith("4-bit b32: ") and doc["variants"]["int4-b32"]["quantized"] == 1
    assert "model.csv" in {p.name for p in out.iterdir()}
    page = (out / "report.md").read_text()
    assert page.index("The whole model in ONNX Runtime") < page.index("The weights, format by format")
    bad = subprocess.run(
        [*cmd[:5], "--dim", "nothing=3", "--out", str(tmp_path / "never")], capture_output=True, text=True, timeout=600
    )
    assert bad.returncode == 2 and "names no dimension" in bad.stderr and not (tmp_path / "never").exists()
    # The same model.json from a second machine: one page with both, a row per machine and variant.
    other = dict(doc, machine_name="other-machine")
    (tmp_path / "other.json").write_text(json.dumps(other))
    page_dir = tmp_path / "machines"
    cmd = [sys.executable, "-m", "qbench", "report", "--models", str(out / "model.json"), str(tmp_path / "other.json")]
    done = subprocess.run([*cmd, "--out", str(page_dir)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = pd.read_csv(page_dir / "models.csv")
    assert sorted(rows["machine"]) == sorted([doc["machine_name"], "other-machine"])
    assert rows["x 1 thread"].tolist() == pytest.approx([rows["x 1 thread"][0]] * 2)
