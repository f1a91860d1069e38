"""ggml Q8_0 / Q4_0: byte for byte with the gguf package and qbench's reference, and the block dot within its bound."""

import numpy as np
import pytest

from qbench import reference as ref
from qbench.ops import ggml

KINDS = ggml.KINDS


def blocks_of_every_kind(rng):
    """Rows of 32-value blocks: random, all zero, exact ties of each rounding rule, extremes of either sign."""
    rows = [rng.standard_normal(256).astype(np.float32) * 3]
    rows.append(np.zeros(256, np.float32))
    # Q8_0 with amax 127 has d = 1: x * (1/d) = x, so halves are ties of roundf (away from zero).
    ties8 = np.concatenate([[127.0], np.arange(-15.5, 15.5, 1.0)]).astype(np.float32)
    # Q4_0 with max -8 has d = 1: q = trunc(x + 8.5), so x = k + 0.5 sits on a truncation boundary.
    ties4 = np.concatenate([[-8.0], np.arange(-7.5, 8.0, 0.5)]).astype(np.float32)
    negative = -np.abs(rng.standard_normal(32)).astype(np.float32)  # extreme negative: Q4_0's d > 0
    first_wins = np.full(32, 0.25, np.float32)
    first_wins[3], first_wins[9] = 2.0, -2.0  # two extremes of one magnitude: the first sets Q4_0's sign
    rows.append(np.concatenate([ties8, ties4, negative, first_wins, rng.uniform(-1, 1, 128).astype(np.float32)]))
    return np.stack(rows)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("parallel", [False, True])
def test_quantize_and_dequantize_match_the_reference(kind, parallel):
    x = blocks_of_every_kind(np.random.default_rng(0))
    got = ggml.quantize(x, kind, parallel=parallel)
    np.testing.assert_array_equal(got, ref.ggml_quantize(x, kind))
    assert got.shape == (3, 256 // 32 * ggml.BLOCK_BYTES[kind]) and got.dtype == np.uint8
    np.testing.assert_array_equal(ggml.dequantize(got, kind, parallel=parallel), ref.ggml_dequantize(got, kind))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", [(64,), (3, 5, 96), (1000, 128)])
def test_bytes_are_the_gguf_packages(kind, shape):
    quants = pytest.importorskip("gguf.quants")
    qtype = getattr(pytest.importorskip("gguf").GGMLQuantizationType, kind)
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    mine = ggml.quantize(x, kind)
    np.testing.assert_array_equal(mine, quants.quantize(x, qtype))
    np.testing.assert_array_equal(ggml.dequantize(mine, kind), quants.dequantize(mine, qtype))
    special = blocks_of_every_kind(rng)
    np.testing.assert_array_equal(ggml.quantize(special, kind), quants.quantize(special, qtype))


def test_ties_round_as_ggml_does():
    x = np.zeros(32, np.float32)
    x[:4] = [127.0, 0.5, -0.5, 2.5]  # d = 1: roundf sends halves away from zero
    q = ggml.quantize(x, "Q8_0")[2:].view(np.int8)
    np.testing.assert_array_equal(q[:4], [127, 1, -1, 3])
    x[:4] = [-8.0, 0.5, -0.5, 7.0]  # d = 1: q = min(15, trunc(x + 8.5))
    nibbles = ggml.quantize(x, "Q4_0")[2:]
    assert list(nibbles[:4] & 15) == [0, 9, 8, 15]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("parallel", [False, True])
def test_matvec_is_within_its_bound_of_the_exact_block_sum(kind, parallel):
    rng = np.random.default_rng(1)
    n, k = 37, 1024
    w = ggml.quantize(rng.standard_normal((n, k)).astype(np.float32), kind)
    x = rng.standard_normal(k).astype(np.float32)
    got = ggml.matvec(w, x, kind, parallel=parallel)
    xq = ggml.quantize(x, "Q8_0")
    for row in range(n):
        terms = ref.ggml_block_terms(w[row], xq, kind)
        exact = terms.sum()
        bound = ggml.vec_dot_error_bound(np.abs(terms).sum(), k // 32, exact)
        assert abs(float(got[row]) - exact) <= bound, (row, got[row], exact, bound)
        assert ggml.vec_dot(w[row], xq, kind) == got[row]


def test_matvec_of_the_q4_0_round_trip_approximates_the_float_product():
    # Not exactness but sense: a 4.5-bit product tracks the float32 one (SQNR well above 10 dB).
    rng = np.random.default_rng(2)
    w, x = rng.standard_normal((64, 512)).astype(np.float32), rng.standard_normal(512).astype(np.float32)
    y = ggml.matvec(ggml.quantize(w, "Q4_0"), x)
    want = w.astype(np.float64) @ x
    assert 10 * np.log10(np.sum(want**2) / np.sum((y - want) ** 2)) > 15


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: ggml.quantize(np.ones(33, np.float32), "Q8_0"), ValueError, "multiple of 32"),
        (lambda: ggml.quantize(np.ones(32, np.float64), "Q8_0"), TypeError, "float32"),
        (lambda: ggml.quantize(np.ones(32, np.float32), "Q5_0"), ValueError, "Q8_0, Q4_0"),
        (lambda: ggml.dequantize(np.ones(35, np.uint8), "Q8_0"), ValueError, "multiple of 34"),
        (lambda: ggml.dequantize(np.ones(36, np.int8), "Q4_0"), TypeError, "uint8"),
        (lambda: ggml.matvec(np.zeros((4, 18), np.uint8), np.ones(64, np.float32)), ValueError, "36 bytes"),
        (lambda: ggml.matvec(np.zeros((4, 36), np.uint8), np.ones((2, 32), np.float32)), TypeError, "1-D"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(kind, bad):
    x = np.ones(96, np.float32)
    x[40] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        ggml.quantize(x, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_the_matvec_bound_is_tight(kind):
    """Some row comes within 4x of the bound: a bound much looser than the arithmetic would pass wrong answers.

    Two blocks a row: the error of its two float32 roundings per term and the final one is then a sizeable
    share of the bound (over 0.5 of it at this seed for both kinds); a sum of many blocks averages it away.
    """
    rng = np.random.default_rng(0)
    n, k = 2000, 64
    w = ggml.quantize(rng.standard_normal((n, k)).astype(np.float32), kind)
    x = rng.standard_normal(k).astype(np.float32)
    got = ggml.matvec(w, x, kind)
    xq = ggml.quantize(x, "Q8_0")
    worst = 0.0
    for row in range(n):
        terms = ref.ggml_block_terms(w[row], xq, kind)
        exact = terms.sum()
        worst = max(worst, abs(float(got[row]) - exact) / ggml.vec_dot_error_bound(np.abs(terms).sum(), 2, exact))
    assert 0.25 < worst <= 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("parallel", [False, True])
def test_packed_blocks_give_the_rows_results_bit_for_bit(path, kind, parallel):
    """Panels of one row per lane: N not a multiple of the panel, one block or many, ties and extremes (Q4_0's
    nibbles 0 and 15, Q8_0's -127 and 127) in the weights and in x; the same floats as the rows' kernel."""
    rng = np.random.default_rng(9)
    special = blocks_of_every_kind(rng)
    for n, k in [(1, 32), (15, 64), (17, 256), (37, 1024), (3, 256)]:
        w = rng.standard_normal((n, k)).astype(np.float32) * rng.uniform(0.01, 100, (n, 1)).astype(np.float32)
        if k == 256:
            w[: len(special)] = special[:n]
        rows = ggml.quantize(w, kind)
        for x in (rng.standard_normal(k).astype(np.float32), special[-1][:k] if k == 256 else np.ones(k, np.float32)):
            packed = ggml.pack_blocks(rows, kind, parallel=parallel)
            assert (packed.isa is not None) == path.endswith("vnni"), packed
            got = ggml.matvec(packed, x, kind, parallel=parallel)
            np.testing.assert_array_equal(got, ggml.matvec(rows, x, kind), err_msg=f"{kind} {n}x{k}")


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_is_each_rows_matvec(path, kind):
    """ggml.matmul of M rows (tiles of rows and the tail tile, a batch shape, no rows) gives each row's matvec,
    from packed panels and from the rows."""
    rng = np.random.default_rng(10)
    rows = ggml.quantize(rng.standard_normal((21, 128)).astype(np.float32), kind)
    packed = ggml.pack_blocks(rows, kind)
    for shape in [(1, 128), (3, 128), (4, 128), (7, 128), (2, 3, 128), (0, 128)]:
        x = rng.standard_normal(shape).astype(np.float32)
        want = np.array([ggml.matvec(rows, row, kind) for row in x.reshape(-1, 128)], np.float32).reshape(
            *shape[:-1], 21
        )
        np.testing.assert_array_equal(ggml.matmul(packed, x, kind), want, err_msg=str(shape))
        np.testing.assert_array_equal(ggml.matmul(rows, x, kind), want, err_msg=str(shape))


def test_packed_blocks_refuse_what_they_were_not_packed_for():
    rows = ggml.quantize(np.ones((4, 64), np.float32), "Q4_0")
    packed = ggml.pack_blocks(rows, "Q4_0")
    with pytest.raises(ValueError, match="the packed weights are Q4_0 rows of K = 64"):
        ggml.matvec(packed, np.ones(64, np.float32), "Q8_0")
    with pytest.raises(ValueError, match="the packed weights are Q4_0 rows of K = 64"):
        ggml.matvec(packed, np.ones(96, np.float32), "Q4_0")
    with pytest.raises(ValueError, match="multiple of 18 bytes"):
        ggml.pack_blocks(rows[:, :20], "Q4_0")
    with pytest.raises(ValueError, match="2-D uint8"):
        ggml.pack_blocks(rows.astype(np.int8), "Q4_0")
