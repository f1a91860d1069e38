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
