"""Peer libraries: optional, wrapped faithfully, and absent ones reported as unavailable (a skip, not a failure)."""

import builtins

import numpy as np
import pytest

import qbench
from qbench import peers, reference


def test_missing_peer_is_unavailable_not_an_error(monkeypatch):
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    monkeypatch.delitem(__import__("sys").modules, "torch", raising=False)
    p = qbench.QuantParams(0.1, 3, "uint8")
    with pytest.raises(peers.PeerUnavailable, match=r"torch is not installed \(pip install -e \"\.\[peers\]\"\)"):
        peers.torch_quantize(np.ones(8, np.float32), p, 1)
    assert issubclass(peers.PeerUnavailable, NotImplementedError)  # asv reports it as skipped


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16"])
@pytest.mark.parametrize("axis", [None, 0])
def test_onnxruntime_matches_reference(dtype, axis):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((8, 1000)) * 3).astype(np.float32)
    p = qbench.calibrate(x, dtype, axis=axis)
    out = np.empty(x.shape, p.dtype)
    try:
        run = peers.onnxruntime_quantize(x, p, out, 1)
    except peers.PeerUnavailable as exc:
        pytest.skip(str(exc))
    assert np.array_equal(run(), reference.quantize(x, p))
    back = np.empty(x.shape, np.float32)
    assert np.array_equal(peers.onnxruntime_dequantize(out, p, back, 1)(), reference.dequantize(out, p))


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_torch_agrees_except_at_ties(dtype):
    pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(20_000) * 3).astype(np.float32)
    p = qbench.calibrate(x, dtype)
    got = peers.to_numpy(peers.torch_quantize(x, p, 1)()).astype(np.int64)
    diff = np.abs(got - reference.quantize(x, p).astype(np.int64))
    assert diff.max() <= 1 and np.count_nonzero(diff) < 20
    q = reference.quantize(x, p)
    back = peers.to_numpy(peers.torch_dequantize(q, p, 1)())
    assert back.dtype == np.float32 and np.allclose(back, reference.dequantize(q, p), rtol=1e-6, atol=1e-6)
    with pytest.raises(peers.PeerUnavailable, match="no uint16"):
        peers.torch_quantize(x, qbench.calibrate(x, "uint16"), 1)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16"])
@pytest.mark.parametrize("scale", [np.float32(0.1), np.float32(3.0), np.float32(1e-30), np.nextafter(np.float32(2), 0)])
def test_qbench_quantize_is_onnxruntimes_on_float32_edge_cases(dtype, scale):
    # Whichever way this CPU computes the quotient (qbench.kernels.division), the bits are ONNX Runtime's:
    # infinities, zeros, subnormals, the largest floats, exact ties and their neighbours, the saturation edges.
    # NaN apart: qbench sends it to the zero point (its documented semantics), ONNX Runtime 1.32 to the minimum.
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    f32 = np.float32
    lo, hi = qbench.QUANT_DTYPES[np.dtype(dtype)]
    ties = (np.arange(-300, 300, dtype=f32) + f32(0.5)) * scale
    specials = np.array([np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 1e-38, 3.4e38, -3.4e38], f32)
    edges = np.array([lo, hi, lo - 1, hi + 1, 2.0**24, -(2.0**24), 2.0**31, -(2.0**31)], f32) * scale
    x = np.concatenate([ties, np.nextafter(ties, f32(np.inf)), np.nextafter(ties, f32(-np.inf)), specials, edges])
    with np.errstate(over="ignore"):
        x = np.concatenate([x, np.random.default_rng(2).standard_normal(4096).astype(f32) * f32(300) * scale])
    p = qbench.QuantParams(scale, (lo + hi + 1) // 2, dtype)
    out = np.empty(x.shape, p.dtype)
    try:
        run = peers.onnxruntime_quantize(x, p, out, 1)
    except peers.PeerUnavailable as exc:
        pytest.skip(str(exc))
    assert np.array_equal(qbench.quantize(x, p), run())
