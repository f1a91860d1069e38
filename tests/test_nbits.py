"""MatMulNBits with int8 activations (accuracy level 4): exact against its NumPy definition on every VNNI path,
within the activations' rounding of the float-activation MatMulNBits, and beside ONNX Runtime at level 4."""

import numpy as np
import pytest

from qbench import reference as ref
from qbench.kernels.isa import ENV, allowed
from qbench.ops import blocks, nbits

#: The VNNI paths this CPU can run (the conftest fixture ``path``, taken indirectly), or one it cannot: skipped.
on_vnni_paths = pytest.mark.parametrize("path", [p.name for p in allowed() if p.vnni] or ["avx512-vnni"], indirect=True)


def values_and_points(b, zp, n, nb, block, bits=4):
    """The values (N, K) and each value's zero point (N, K), unpacked as MatMulNBits stores them."""
    flat = b.reshape(n, -1)
    values = ref.unpack_int4(flat, (n, nb * block), signed=False) if bits == 4 else flat.astype(np.int64)
    points = np.repeat(blocks._nbits_zero_points(zp, bits, n, nb), block, axis=1)
    return values, points


@on_vnni_paths
@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("block", [32, 64, 128])
@pytest.mark.parametrize("symmetric", [True, False])
def test_int8_activations_are_exact_against_the_definition(path, bits, block, symmetric):
    """Symmetric weights (the Q4_0 / Q8_0 panels) and zero points per block (each lane's own), K not a multiple of
    the block (padded), N not a multiple of the panel, one row and a batch whose row count is no multiple of the
    tile."""
    rng = np.random.default_rng(block + bits)
    for n, k, m in [(5, 64, 1), (37, 256, 7), (20, 300, 2)]:
        w = rng.standard_normal((n, k)).astype(np.float32)
        b, s, zp = blocks.quantize_nbits(w, bits=bits, block_size=block, symmetric=symmetric)
        packed = nbits.pack_nbits(b, s, zp, bits=bits, block_size=block)
        assert (
            packed.kernel
            == {(4, True): "Q4_0", (4, False): "Q4z", (8, True): "Q8_0", (8, False): "Q8z"}[bits, symmetric]
        )
        a = rng.standard_normal((m, k)).astype(np.float32) * rng.uniform(0.01, 10, (m, 1)).astype(np.float32)
        got = nbits.matmul_nbits_int8(a, packed)
        nb = b.shape[1]
        values, points = values_and_points(b, zp, n, nb, block, bits)
        padded = np.zeros((m, nb * block), np.float32)
        padded[:, :k] = a
        want = ref.matmul_nbits_int8(padded, values, np.repeat(s, block, axis=1), points)
        np.testing.assert_array_equal(got, want, err_msg=f"{n}x{k}, {m} rows")
        np.testing.assert_array_equal(nbits.matmul_nbits_int8(a[0], packed), want[0])


@on_vnni_paths
@pytest.mark.parametrize("symmetric", [True, False])
def test_int8_activations_stay_within_their_rounding_of_the_float_product(path, symmetric):
    rng = np.random.default_rng(11)
    n, k, block = 64, 512, 32
    w = rng.standard_normal((n, k)).astype(np.float32)
    b, s, zp = blocks.quantize_nbits(w, bits=4, block_size=block, symmetric=symmetric)
    a = rng.standard_normal((3, k)).astype(np.float32)
    got = nbits.matmul_nbits_int8(a, nbits.pack_nbits(b, s, zp, block_size=block))
    values, points = values_and_points(b, zp, n, k // block, block)
    weights = ((values.astype(np.float32) - points) * np.repeat(s, block, axis=1)).astype(np.float32)
    exact = a.astype(np.float64) @ weights.T.astype(np.float64)
    bound = nbits.int8_error_bound(a, weights, got)
    assert np.all(np.abs(got - exact) <= bound), np.max(np.abs(got - exact) / bound)
    assert np.max(np.abs(got - exact) / bound) > 0.05  # the bound is not vacuous: some output comes near it


@on_vnni_paths
@pytest.mark.parametrize("bits", [4, 8])
def test_int8_activations_beside_onnxruntime_at_accuracy_level_4(path, bits):
    """ONNX Runtime quantizes the activations its own way: both within the activations' rounding of the float
    product, each bounded as above (ONNX Runtime's steps are as large as qbench's at most)."""
    peers = pytest.importorskip("qbench.peers")
    pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(12)
    n, k, block = 48, 256, 32
    w = rng.standard_normal((n, k)).astype(np.float32)
    b, s, _ = blocks.quantize_nbits(w, bits=bits, block_size=block)
    a = rng.standard_normal((2, k)).astype(np.float32)
    out = np.empty((2, n), np.float32)
    run = peers.onnxruntime_matmul_nbits(a, b, s, None, bits, block, out, 1, accuracy_level=4)
    theirs = np.asarray(run())
    ours = nbits.matmul_nbits_int8(a, nbits.pack_nbits(b, s, bits=bits, block_size=block))
    values, points = values_and_points(b, None, n, k // block, block, bits)
    weights = ((values.astype(np.float32) - points) * np.repeat(s, block, axis=1)).astype(np.float32)
    exact = a.astype(np.float64) @ weights.T.astype(np.float64)
    bound = nbits.int8_error_bound(a, weights, exact)
    assert np.all(np.abs(ours - exact) <= bound)
    assert np.all(np.abs(theirs - exact) <= 2 * bound), np.max(np.abs(theirs - exact) / bound)


@on_vnni_paths
def test_bad_input_is_refused_with_what_is_accepted(path):
    w = np.ones((4, 64), np.float32)
    b, s, _ = blocks.quantize_nbits(w, bits=4, block_size=16)
    with pytest.raises(ValueError, match="at least 32"):
        nbits.pack_nbits(b, s, block_size=16)
    b, s, _ = blocks.quantize_nbits(w, bits=4, block_size=32)
    with pytest.raises(ValueError, match="uint8 \\(N, blocks, 16\\)"):
        nbits.pack_nbits(b[:, :, :8], s, block_size=32)
    with pytest.raises(ValueError, match="8-bit blocks of 32 is uint8 \\(N, blocks, 32\\)"):
        nbits.pack_nbits(b, s, bits=8, block_size=32)  # 4-bit bytes called 8-bit
    packed = nbits.pack_nbits(b, s, block_size=32)
    with pytest.raises(ValueError, match="2 blocks of 32"):
        nbits.matmul_nbits_int8(np.ones(96, np.float32), packed)
    with pytest.raises(TypeError, match="packed by pack_nbits"):
        nbits.matmul_nbits_int8(np.ones(64, np.float32), b)
    with pytest.raises(ValueError, match="NaN or inf"):
        nbits.matmul_nbits_int8(np.full(64, np.nan, np.float32), packed)


def test_a_cpu_without_vnni_is_told_to_use_the_float_form(monkeypatch):
    names = [p.name for p in allowed() if not p.vnni]
    if not names:
        pytest.skip("no kernel path without VNNI on this CPU")
    monkeypatch.setenv(ENV, names[0])
    b, s, _ = blocks.quantize_nbits(np.ones((4, 64), np.float32), bits=4, block_size=32)
    with pytest.raises(RuntimeError, match="needs a CPU with VNNI.*use matmul_nbits"):
        nbits.pack_nbits(b, s, block_size=32)
